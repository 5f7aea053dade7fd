using System.Text.Encodings.Web;
using System.Text.Json;

namespace R1Sharp.Server.Api;

/// Response JSON: compact, with non-ASCII and HTML characters written as they are (still valid JSON).
public static class Json
{
    public static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
