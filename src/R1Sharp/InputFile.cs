using System.Runtime.InteropServices;
using System.Text;

namespace R1Sharp;

/// Files a user points R1Sharp at (model folders, tokenizer files, data): only regular files (a FIFO or
/// a device named model.safetensors would hang a read or never end), symlinks followed as Hugging
/// Face's cache uses them, and text read only up to a size limit.
public static partial class InputFile
{
    public static void RequireRegular(string path)
    {
        if (!File.Exists(path)) throw new R1SharpException($"{path}: file not found");
        if (!IsRegular(path)) throw new R1SharpException($"{path}: not a regular file");
    }

    public static string ReadText(string path, long maxBytes)
    {
        RequireRegular(path);
        var length = new FileInfo(path).Length;
        if (length > maxBytes) throw new R1SharpException($"{path}: {length:N0} bytes is more than the {maxBytes:N0} such a file may have");
        return File.ReadAllText(path, Encoding.UTF8);
    }

    public static byte[] ReadBytes(string path, long maxBytes)
    {
        RequireRegular(path);
        var length = new FileInfo(path).Length;
        if (length > maxBytes) throw new R1SharpException($"{path}: {length:N0} bytes is more than the {maxBytes:N0} such a file may have");
        return File.ReadAllBytes(path);
    }

    private const int AtCurrentDirectory = -100, StatxType = 0x1, TypeMask = 0xF000, Regular = 0x8000;

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int directory, string path, int flags, uint mask, Span<byte> buffer);

    /// statx(2) follows symlinks and reports the file type; its struct has one layout on every Linux
    /// architecture (stx_mode is the 16 bits at offset 28).
    private static bool IsRegular(string path)
    {
        if (!OperatingSystem.IsLinux()) return true;
        try
        {
            Span<byte> buffer = stackalloc byte[256];
            if (Statx(AtCurrentDirectory, path, 0, StatxType, buffer) != 0) return File.Exists(path);
            return (BitConverter.ToUInt16(buffer[28..30]) & TypeMask) == Regular;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return new FileInfo(path).Length > 0;   // an old libc: non-regular files report no size
        }
    }
}
