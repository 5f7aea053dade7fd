namespace R1Sharp.Server.Tests;

/// Resident memory is a process-wide figure: this test runs alone, not beside other servers.
[CollectionDefinition(nameof(MemoryTests), DisableParallelization = true)]
public sealed class MemoryCollection;

[Collection(nameof(MemoryTests))]
public class MemoryTests
{
    [Fact]
    public async Task AThousandSequentialRequestsLeaveMemoryFlat()
    {
        await using var server = new TestServer();
        var body = """{"messages":[{"role":"user","content":"hi"}],"max_tokens":8}""";
        for (int i = 0; i < 100; i++) (await server.Http.PostAsync("/v1/chat/completions", TestServer.Json(body))).EnsureSuccessStatusCode();
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        var (managed, tensors, resident) = (GC.GetTotalMemory(true), server.Scheduler.LiveTensors, Environment.WorkingSet);
        for (int i = 0; i < 1000; i++) (await server.Http.PostAsync("/v1/chat/completions", TestServer.Json(body))).EnsureSuccessStatusCode();
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        Assert.Equal(tensors, server.Scheduler.LiveTensors);
        Assert.True(GC.GetTotalMemory(true) - managed < 8 << 20, $"managed heap grew by {(GC.GetTotalMemory(true) - managed) >> 20} MiB");
        Assert.True(Environment.WorkingSet - resident < 64 << 20, $"resident memory grew by {(Environment.WorkingSet - resident) >> 20} MiB");
    }
}
