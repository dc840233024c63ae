// A minimal multi-agent app on Concord: a planner hands topics to researchers through a queue, the researchers
// (a simulated model calling Concord tools) add findings to shared notes with the version they read, and a writer
// follows their "done" events and writes a report. Swap SimulatedChatClient for any real IChatClient.
using System.Text.Json;
using System.Text.Json.Nodes;
using Concord;
using Concord.Agents;
using Concord.Agents.Chat;
using Concord.Engine;

string[] topics = ["pricing", "competitors", "regulation", "hiring", "churn"];
await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { StrictMode = true });
var runtime = new AgentRuntime(store, "sample", new AgentRuntimeOptions { StopWhenIdle = true, Seed = 7 });

runtime.AddAgent("planner", "Planner").OnStart(async (ctx, ct) =>
{
    foreach (var topic in topics) await ctx.EnqueueAsync("topics", new { topic }, cancellationToken: ct);
});

// What the "model" does: read the notes, add its finding, write with the version it read; on a conflict, redo on the
// current notes the conflict returned (see ConcordTools.Instructions, which a real model is given).
var script = SimulatedScript.ReadModifyWrite(
    key: _ => "notes/market",
    change: (turn, current) =>
    {
        var notes = current is { } c ? JsonNode.Parse(c.GetRawText())!.AsObject() : [];
        var topic = turn.Prompt.Split(' ')[1];
        notes[topic] = $"three facts about {topic}";
        return JsonSerializer.SerializeToElement(notes);
    });
runtime.AddAgent("researcher", "Researcher")
    .WithConcurrency(3)
    .WithChatClient(ctx => new SimulatedChatClient(script, new SimulatedChatClientOptions
    {
        TimeProvider = ctx.Time,
        Seed = 1,
        MinLatency = TimeSpan.FromMilliseconds(50), // shorter than a real model, so the sample runs in a second
        MaxLatency = TimeSpan.FromMilliseconds(300),
    }))
    .OnTask("topics", async (ctx, ct) =>
    {
        var topic = ctx.Payload.GetProperty("topic").GetString();
        var answer = await ctx.AskAsync($"Research {topic} and add it to notes/market.", cancellationToken: ct);
        await ctx.PublishAsync("research-done", "done", new { topic, answer = answer.Text }, ct);
    });

var done = 0;
runtime.AddAgent("writer", "Writer").OnEvent("research-done", async (ctx, ct) =>
{
    if (++done < topics.Length) return;
    var notes = await ctx.Session.GetAsync("notes/market", ct);
    var report = new { topics = notes!.Value.EnumerateObject().Select(p => p.Name).Order().ToArray(), basedOnVersion = notes.Version };
    ctx.AddEffect(TxnOp.Put("reports/market", JsonSerializer.SerializeToElement(report), Expect.Absent)); // commits once, with the event
});

await runtime.RunAsync();

var final = await store.GetAsync("sample", "notes/market");
var kept = topics.Count(t => final?.Value.TryGetProperty(t, out _) == true);
var failures = runtime.Journal.Count(e => e.Kind == AgentJournalKind.TaskFailed);
Console.WriteLine($"notes/market v{final?.Version}: {kept} of {topics.Length} findings kept{(kept == topics.Length ? ", none lost" : "")}");
foreach (var s in runtime.GetStats())
    Console.WriteLine($"  {s.Agent,-10} tasks {s.Completed}, events {s.Events}, failures {s.Failed}, most in flight {s.MaxInFlight}");
var reportRecord = await store.GetAsync("sample", "reports/market");
Console.WriteLine($"report: {reportRecord?.Value.GetRawText() ?? "missing"}");
return kept == topics.Length && reportRecord is not null && failures == 0 ? 0 : 1;
