using System.Text.Json;
using Concord.Agents;
using Concord.Agents.Chat;
using Concord.Agents.Tools;
using Concord.Engine;
using Concord.Lab.Time;
using Microsoft.Extensions.AI;

namespace Concord.Tests.Agents;

public sealed class SimulatedChatClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static SimulatedScript Echo { get; } = SimulatedScript.From(t => SimulatedStep.Reply($"#{t.Call}: {t.Prompt}"));

    private static async Task<(List<string> Texts, List<TimeSpan> At)> ConverseAsync(int seed, int calls)
    {
        var time = new VirtualTimeProvider();
        var client = new SimulatedChatClient(Echo, new SimulatedChatClientOptions { TimeProvider = time, Seed = seed });
        var texts = new List<string>();
        var at = new List<TimeSpan>();
        await time.RunAsync([async ct =>
        {
            for (var i = 0; i < calls; i++)
            {
                var response = await client.GetResponseAsync($"q{i}", cancellationToken: ct);
                texts.Add(response.Text);
                at.Add(time.Elapsed);
            }
        }], Ct);
        return (texts, at);
    }

    [Fact]
    public async Task Latency_SameSeed_SameLatenciesWithinBounds()
    {
        var a = await ConverseAsync(5, 20);
        var b = await ConverseAsync(5, 20);
        var c = await ConverseAsync(6, 20);

        Assert.Equal(a.At, b.At);
        Assert.Equal(a.Texts, b.Texts);
        Assert.NotEqual(a.At, c.At);
        var gaps = a.At.Zip([TimeSpan.Zero, .. a.At], (x, y) => x - y).ToList();
        Assert.All(gaps, g => Assert.InRange(g, TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(2)));
        Assert.True(gaps.Max() - gaps.Min() > TimeSpan.FromMilliseconds(300)); // actually spread, not constant
    }

    [Fact]
    public async Task Streaming_SameAsNonStreaming()
    {
        var time = new VirtualTimeProvider();
        var client = new SimulatedChatClient(Echo, new SimulatedChatClientOptions { TimeProvider = time });
        var text = "";
        await time.RunAsync([async ct =>
        {
            await foreach (var update in client.GetStreamingResponseAsync("hello", cancellationToken: ct)) text += update.Text;
        }], Ct);
        Assert.Equal("#1: hello", text);
        Assert.Equal(1, client.Calls);
    }

    [Fact]
    public async Task ReadModifyWriteScript_TwoAgentsOverlap_ConflictRedoneAndBothChangesKept()
    {
        var totalConflicts = 0;
        for (var pair = 0; pair < 10; pair++)
        {
            var (conflicts, final, texts) = await TwoAgentsAsync(2 * pair + 1, 2 * pair + 2);
            Assert.Equal("status", final.GetProperty("status").GetString());
            Assert.Equal("fees", final.GetProperty("fees").GetString());
            Assert.All(texts, t => Assert.StartsWith("Updated accounts/a", t, StringComparison.Ordinal));
            totalConflicts += conflicts;
        }
        // Some pairs overlapped (both read v1): the loser got a conflict and redid its change on the current value.
        Assert.True(totalConflicts > 0);
    }

    private static async Task<(int Conflicts, JsonElement Final, string[] Texts)> TwoAgentsAsync(int seedA, int seedB)
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        await store.PutAsync("ns", "accounts/a", JsonSerializer.SerializeToElement(new { id = "a" }), new WriteOptions { Expect = Expect.Absent }, Ct);
        var time = new VirtualTimeProvider();
        IChatClient Agent(string id, int seed)
        {
            var script = SimulatedScript.ReadModifyWrite(_ => "accounts/a", (_, current) =>
            {
                var node = System.Text.Json.Nodes.JsonNode.Parse(current!.Value.GetRawText())!.AsObject();
                node[id] = id;
                return JsonSerializer.SerializeToElement(node);
            });
            return new SimulatedChatClient(script, new SimulatedChatClientOptions { TimeProvider = time, Seed = seed })
                .WithConcordTools(ConcordTools.Create(new ConcordSession(store, "ns", id, new SessionOptions { TimeProvider = time })));
        }
        var status = Agent("status", seedA);
        var fees = Agent("fees", seedB);
        var responses = new ChatResponse[2];

        await time.RunAsync([
            async ct => responses[0] = await status.GetResponseAsync("set status", cancellationToken: ct),
            async ct => responses[1] = await fees.GetResponseAsync("set fees", cancellationToken: ct)], Ct);

        var final = await store.GetAsync("ns", "accounts/a", cancellationToken: Ct);
        var conflicts = responses.SelectMany(r => r.Messages).SelectMany(m => m.Contents).OfType<FunctionResultContent>()
            .Count(r => ((JsonElement)r.Result!).TryGetProperty("conflict", out _));
        return (conflicts, final!.Value, [.. responses.Select(r => r.Text)]);
    }

    [Fact]
    public void Options_BadLatencyRange_Refused()
    {
        Assert.Throws<ArgumentException>(() => new SimulatedChatClient(Echo, new SimulatedChatClientOptions { MinLatency = TimeSpan.FromSeconds(3) }));
    }

    [Fact]
    public async Task Runtime_AgentWithChatClient_AskUsesItsToolsAndIdentity()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
        var time = new VirtualTimeProvider();
        var runtime = new AgentRuntime(store, "ns", new AgentRuntimeOptions { TimeProvider = time, StopWhenIdle = true });
        var script = SimulatedScript.Sequence(
            _ => SimulatedStep.Call("concord_increment", new { key = "stats/asks", by = 1 }),
            _ => SimulatedStep.Reply("counted"));
        string? answer = null;
        runtime.AddAgent("counter").WithChatClient(ctx => new SimulatedChatClient(script, new SimulatedChatClientOptions { TimeProvider = ctx.Time }))
            .OnStart(async (ctx, ct) => answer = (await ctx.AskAsync("count this", cancellationToken: ct)).Text);

        await time.RunAsync(runtime.CreateFlows(), Ct);

        Assert.Equal("counted", answer);
        var record = await store.GetAsync("ns", "stats/asks", cancellationToken: Ct);
        Assert.Equal(1, record!.Value.GetProperty("value").GetDouble());
        Assert.Equal("counter", record.Writer);
    }
}
