using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Concord.Agents.Chat;
using Microsoft.Extensions.AI;

namespace Concord.Lab.Scenarios;

/// <summary>
/// A tool-result cache: four LLM agents (a <see cref="SimulatedChatClient"/> with tools, 0.2–2 s per model call) each need
/// one FX rate; on a cache miss they call a paid FX tool and store the result in a shared cache record. A downstream invoice
/// agent then prices an invoice from the cache alone. Naive agents use a <c>cache_get</c>/<c>cache_put</c> pair without
/// versions and erase each other's entries; with Concord's tools the write states the version it read (a conflict comes
/// back with the current cache and is redone), or the entry is added with a patch.
/// </summary>
/// <remarks>Deterministic for a seed on a fresh store: the agents run on the agent runtime in virtual time.</remarks>
public sealed class ToolCacheScenario : IAgentScenario
{
    /// <summary>The cache's key: <c>{"rates":{"EUR":1.08,…}}</c>.</summary>
    public const string Key = "cache/fx-rates";

    /// <summary>Currencies (one agent each) and their USD rates, as the FX tool returns them.</summary>
    public static IReadOnlyList<(string Currency, double Rate, double InvoiceAmount)> Currencies { get; } =
    [
        ("EUR", 1.08, 1200),
        ("GBP", 1.27, 800),
        ("JPY", 0.0067, 150_000),
        ("CHF", 1.12, 500),
    ];

    /// <summary>Creates the scenario: <paramref name="seed"/> fixes start offsets (0–0.3 s), FX tool latencies (0.6–1.5 s) and model latencies.</summary>
    public ToolCacheScenario(int seed)
    {
        Seed = seed;
        Plans = [.. Currencies.Select((c, i) =>
        {
            var random = new Random(ScenarioRandom.Derive(seed, i));
            return (ScenarioRandom.Milliseconds(random, 0, 300), ScenarioRandom.Milliseconds(random, 600, 1500));
        })];
    }

    /// <inheritdoc />
    public string Name => "cache";

    /// <inheritdoc />
    public string Title => "tool-result cache";

    /// <inheritdoc />
    public string Story =>
        "Four LLM agents (simulated model, 0.2–2 s per call) each need one FX rate (EUR, GBP, JPY, CHF). Each reads the shared cache " +
        "cache/fx-rates; on a miss it calls a paid FX tool (0.6–1.5 s) and stores the rate in the cache. Then an invoice agent prices an " +
        "invoice in the four currencies from the cache alone (no paid calls).";

    /// <inheritdoc />
    public int Seed { get; }

    /// <summary>Per agent: start offset and FX tool latency.</summary>
    public IReadOnlyList<(TimeSpan Start, TimeSpan FxLatency)> Plans { get; }

    /// <inheritdoc />
    public IReadOnlyList<ConcurrencyMode> Modes { get; } = [ConcurrencyMode.Naive, ConcurrencyMode.Optimistic, ConcurrencyMode.Patch];

    /// <inheritdoc />
    public bool IsSafe(ConcurrencyMode mode) => mode is ConcurrencyMode.Optimistic or ConcurrencyMode.Patch;

    private static string AgentOf(string currency) => "quote-" + currency.ToLowerInvariant();

    private sealed record CachePut(string Agent, string Currency, long ReadVersion, long WroteVersion, DateTimeOffset At, IReadOnlyList<string> Written);

    /// <inheritdoc />
    public async Task<ScenarioRun> RunAsync(IConcordStore store, string ns, ConcurrencyMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!Modes.Contains(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "cache supports naive, optimistic and patch");
        await ScenarioKit.ClearAsync(store, ns, cancellationToken).ConfigureAwait(false);
        await store.PutAsync(ns, Key, ScenarioKit.Json(new { rates = new Dictionary<string, double>() }), new WriteOptions { Expect = Expect.Absent, Agent = "setup" }, cancellationToken).ConfigureAwait(false);

        var (runtime, time) = ScenarioKit.NewRuntime(store, ns, Seed);
        var gate = new Lock();
        var puts = new List<CachePut>();
        var lines = new Dictionary<string, ScenarioAgentLine>();
        var conflicts = 0;
        var paidCalls = 0;
        runtime.AddAgent("desk", "Quote desk").OnStart(async (ctx, ct) =>
        {
            foreach (var (currency, _, _) in Currencies) await ctx.EnqueueAsync("fx." + currency.ToLowerInvariant(), new { currency }, cancellationToken: ct).ConfigureAwait(false);
        });
        for (var i = 0; i < Currencies.Count; i++)
        {
            var (currency, rate, _) = Currencies[i];
            var (start, fxLatency) = Plans[i];
            var agent = AgentOf(currency);
            long naiveReadVersion = 0;
            var tools = new List<AITool>
            {
                new ScenarioTool("fx_rate", "Calls the paid FX API: the USD value of one unit of a currency.", async (args, ct) =>
                {
                    Interlocked.Increment(ref paidCalls);
                    await Task.Delay(fxLatency, time, ct).ConfigureAwait(false);
                    return ScenarioKit.Json(new { currency = args.GetString("currency"), rate });
                }),
            };
            if (mode == ConcurrencyMode.Naive)
            {
                // The tools people write first: the whole cache in, the whole cache out, no versions.
                tools.Add(new ScenarioTool("cache_get", "Returns the whole tool-result cache.", async (args, ct) =>
                {
                    var record = await store.GetAsync(ns, Key, null, ct).ConfigureAwait(false);
                    naiveReadVersion = record!.Version;
                    return ScenarioKit.Json(new { cache = record.Value });
                }));
                tools.Add(new ScenarioTool("cache_put", "Replaces the whole tool-result cache.", async (args, ct) =>
                {
                    var cache = args.GetJson("cache");
                    var result = await store.PutAsync(ns, Key, cache, new WriteOptions { Expect = Expect.Any, Agent = agent }, ct).ConfigureAwait(false);
                    lock (gate) puts.Add(new CachePut(agent, currency, naiveReadVersion, result.Version, time.GetUtcNow(), [.. cache.GetProperty("rates").EnumerateObject().Select(p => p.Name)]));
                    return ScenarioKit.Json(new { stored = true });
                }));
            }
            var script = SimulatedScript.From(turn => Decide(turn, mode, currency));
            var index = i;
            runtime.AddAgent(agent).WithChatClient(ctx => new SimulatedChatClient(script, new SimulatedChatClientOptions
            {
                TimeProvider = ctx.Time,
                Seed = ScenarioRandom.Derive(Seed, 50 + index),
            })).OnTask("fx." + currency.ToLowerInvariant(), async (ctx, ct) =>
            {
                await ctx.DelayAsync(start, ct).ConfigureAwait(false);
                var response = await ctx.AskAsync($"Get the {currency} rate, caching the result.", new ChatOptions { Tools = tools }, ct).ConfigureAwait(false);
                var results = response.Messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Select(r => (JsonElement)r.Result!).ToList();
                var mine = results.Count(r => r.TryGetProperty("conflict", out _));
                var written = results.LastOrDefault(r => r.TryGetProperty("ok", out var ok) && ok.GetBoolean() && r.TryGetProperty("revision", out _));
                var steps = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Select(c => c.Name).ToList();
                lock (gate)
                {
                    conflicts += mine;
                    lines[agent] = new ScenarioAgentLine(agent,
                        $"{string.Join(" → ", steps)}{(mine > 0 ? $" ({mine} conflict{(mine == 1 ? "" : "s")}, redone on the current cache)" : "")}" +
                        $"{(written.ValueKind == JsonValueKind.Object ? $" → v{written.GetProperty("version").GetInt64()}" : "")}; answered at {ScenarioKit.Seconds(ctx.Time.GetUtcNow())}: \"{response.Text}\"",
                        true);
                }
                await ctx.PublishAsync("fx-quotes", "quoted", new { currency }, ct).ConfigureAwait(false);
            });
        }
        DownstreamVerdict? verdict = null;
        var quoted = 0;
        runtime.AddAgent("invoicer", "Invoice agent").OnEvent("fx-quotes", async (ctx, ct) =>
        {
            // Handed off by events: once every quote agent reported, price the invoice from the cache alone.
            if (++quoted < Currencies.Count) return;
            var cache = await ctx.Session.GetAsync(Key, ct).ConfigureAwait(false);
            verdict = PriceInvoice(cache!.Value);
        });

        var elapsed = await time.RunAsync(runtime.CreateFlows(), cancellationToken).ConfigureAwait(false);

        var final = await store.GetAsync(ns, Key, null, cancellationToken).ConfigureAwait(false) ?? throw new InvalidOperationException($"{Key} is missing after the run");
        var cached = final.Value.GetProperty("rates").EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var ordered = puts.OrderBy(p => p.WroteVersion).ToList();
        var lost = new List<string>();
        foreach (var (currency, _, _) in Currencies.Where(c => !cached.Contains(c.Currency)))
        {
            var put = ordered.FirstOrDefault(p => p.Currency == currency);
            var by = put is null ? null : ordered.FirstOrDefault(b => b.WroteVersion > put.WroteVersion && !b.Written.Contains(currency));
            lost.Add(put is null || by is null
                ? $"the {currency} rate is missing from the cache"
                : $"{put.Agent} cached {currency} at v{put.WroteVersion} ({ScenarioKit.Seconds(put.At)}); {by.Agent} replaced the whole cache at v{by.WroteVersion} " +
                  $"with the copy it had read at v{by.ReadVersion}, without {currency}: the paid call is wasted and the next reader misses");
            var line = lines.GetValueOrDefault(AgentOf(currency));
            if (line is not null) lines[AgentOf(currency)] = line with { Ok = false };
        }
        return new ScenarioRun
        {
            Scenario = Name,
            Mode = mode,
            Namespace = ns,
            Agents = [.. Currencies.Select(c => lines.GetValueOrDefault(AgentOf(c.Currency)) ?? new ScenarioAgentLine(AgentOf(c.Currency), "did not run", false))],
            Lost = lost,
            Explanation = mode switch
            {
                ConcurrencyMode.Naive when lost.Count > 0 =>
                    "cache_put replaces the whole cache with the copy the agent fetched before its paid call; an agent that fetched earlier erases " +
                    "the entries stored meanwhile. The tool said \"stored\" every time.",
                ConcurrencyMode.Naive => "This seed's timing kept every entry: naive code is still wrong, only lucky.",
                ConcurrencyMode.Optimistic =>
                    $"concord_write states the version the agent read; {(conflicts == 0 ? "no write was stale this time" : $"{conflicts} stale write{(conflicts == 1 ? " was" : "s were")} refused")} " +
                    "and the conflict result carried the current cache, so the model added its rate to it and wrote again, without another paid call.",
                _ => "concord_patch adds only the agent's own entry (/rates/CCY) to the cache as it is at commit time: nothing to overwrite, nothing to retry.",
            },
            Downstream = verdict ?? new DownstreamVerdict("invoicer", "nothing", "never ran", "a priced invoice", false),
            Conflicts = conflicts,
            Final = final.Value,
            VirtualMs = (long)elapsed.TotalMilliseconds,
        };
    }

    /// <summary>The simulated model's policy for one agent (what a good model does with these tools).</summary>
    private static SimulatedStep Decide(SimulatedTurn turn, ConcurrencyMode mode, string currency)
    {
        var results = turn.ToolResults;
        var last = turn.LastToolResult;
        if (last is null) return mode == ConcurrencyMode.Naive ? SimulatedStep.Call("cache_get", new { }) : SimulatedStep.Call("concord_read", new { key = Key });
        var l = last.Value;
        var fx = results.FirstOrDefault(r => r.ValueKind == JsonValueKind.Object && r.TryGetProperty("rate", out _));
        if (l.TryGetProperty("stored", out _)) return SimulatedStep.Reply($"{currency} rate cached.");
        if (mode == ConcurrencyMode.Naive)
        {
            var cache = results.First(r => r.TryGetProperty("cache", out _)).GetProperty("cache");
            if (cache.GetProperty("rates").TryGetProperty(currency, out var hit)) return SimulatedStep.Reply($"{currency} = {hit.GetDouble()} (cached).");
            if (fx.ValueKind != JsonValueKind.Object) return SimulatedStep.Call("fx_rate", new { currency });
            var updated = JsonNode.Parse(cache.GetRawText())!.AsObject();
            updated["rates"]![currency] = fx.GetProperty("rate").GetDouble();
            return SimulatedStep.Call("cache_put", new { cache = updated });
        }
        if (l.TryGetProperty("found", out _))
        {
            if (l.GetProperty("value").GetProperty("rates").TryGetProperty(currency, out var hit)) return SimulatedStep.Reply($"{currency} = {hit.GetDouble()} (cached).");
            return SimulatedStep.Call("fx_rate", new { currency });
        }
        var read = results.First(r => r.TryGetProperty("found", out _));
        if (l.TryGetProperty("rate", out var rate))
        {
            return mode == ConcurrencyMode.Patch
                ? SimulatedStep.Call("concord_patch", new { key = Key, operations = new[] { new { op = "add", path = "/rates/" + currency, value = rate.GetDouble() } } })
                : SimulatedStep.Call("concord_write", new { key = Key, value = WithRate(read.GetProperty("value"), currency, rate.GetDouble()), expectedVersion = read.GetProperty("version").GetInt64() });
        }
        if (l.TryGetProperty("conflict", out var conflict) && conflict.GetString() == "version_mismatch")
        {
            return SimulatedStep.Call("concord_write", new
            {
                key = Key,
                value = WithRate(l.GetProperty("currentValue"), currency, fx.GetProperty("rate").GetDouble()),
                expectedVersion = l.GetProperty("currentVersion").GetInt64(),
            });
        }
        if (l.TryGetProperty("ok", out var ok) && ok.GetBoolean()) return SimulatedStep.Reply($"{currency} rate cached at version {l.GetProperty("version").GetInt64()}.");
        return SimulatedStep.Reply($"Could not cache {currency}: {l.GetRawText()}");
    }

    private static JsonObject WithRate(JsonElement cache, string currency, double rate)
    {
        var node = JsonNode.Parse(cache.GetRawText())!.AsObject();
        node["rates"]![currency] = rate;
        return node;
    }

    /// <summary>The invoice agent: prices every line from the cache; a line without a cached rate cannot be priced.</summary>
    internal static DownstreamVerdict PriceInvoice(JsonElement cache)
    {
        var rates = cache.GetProperty("rates");
        double total = 0, expected = 0;
        var missing = new List<string>();
        foreach (var (currency, rate, amount) in Currencies)
        {
            expected += amount * rate;
            if (rates.TryGetProperty(currency, out var r)) total += amount * r.GetDouble();
            else missing.Add(currency);
        }
        static string Usd(double v) => "$" + v.ToString("N2", CultureInfo.InvariantCulture);
        var output = missing.Count == 0
            ? $"invoice total {Usd(total)}, all {Currencies.Count} lines priced"
            : $"invoice total {Usd(total)}: {missing.Count} line(s) left out ({string.Join(", ", missing)}: no cached rate), the customer is under-billed";
        return new DownstreamVerdict("invoicer", $"cached rates for {string.Join(", ", rates.EnumerateObject().Select(p => p.Name))}", output,
            $"invoice total {Usd(expected)}, all {Currencies.Count} lines priced", missing.Count == 0);
    }
}

/// <summary>A small tool for the scenarios: a name, a description, and a body over the raw arguments.</summary>
internal sealed class ScenarioTool(string name, string description, Func<ScenarioToolArgs, CancellationToken, Task<JsonElement>> body) : AIFunction
{
    public override string Name => name;

    public override string Description => description;

    protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken) =>
        await body(new ScenarioToolArgs(arguments), cancellationToken).ConfigureAwait(false);
}

/// <summary>Arguments of a <see cref="ScenarioTool"/> call.</summary>
internal sealed class ScenarioToolArgs(AIFunctionArguments arguments)
{
    public JsonElement GetJson(string name) => arguments.TryGetValue(name, out var v) && v is JsonElement e ? e : ScenarioKit.Json(v);

    public string? GetString(string name) => GetJson(name) is { ValueKind: JsonValueKind.String } e ? e.GetString() : null;
}
