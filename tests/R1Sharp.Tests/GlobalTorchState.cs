namespace R1Sharp.Tests;

/// Tests that change libtorch's process-wide default device run alone, after the parallel ones.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalTorchState
{
    public const string Name = "global torch state";
}
