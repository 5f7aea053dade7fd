using System.Runtime.CompilerServices;

namespace R1Sharp.Server.Tests;

/// The entry point's native settings (NativeRuntime), applied before any test touches TorchSharp.
static class NativeSetup
{
    [ModuleInitializer]
    internal static void Configure() => R1Sharp.NativeRuntime.Configure();
}
