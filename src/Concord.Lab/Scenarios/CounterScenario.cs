using System.Text.Json;
using Concord.Lab.Time;

namespace Concord.Lab.Scenarios;

/// <summary>The outcome of one <see cref="CounterScenario"/> run.</summary>
public sealed record CounterRun
{
    /// <summary>How the agents incremented.</summary>
    public required ConcurrencyMode Mode { get; init; }

    /// <summary>Number of agents.</summary>
    public required int Agents { get; init; }

    /// <summary>Increments per agent.</summary>
    public required int Increments { get; init; }

    /// <summary>Agents × increments: what the counter should read.</summary>
    public long Expected => (long)Agents * Increments;

    /// <summary>What it reads.</summary>
    public required long Actual { get; init; }

    /// <summary>Increments that vanished (expected − actual).</summary>
    public long Lost => Expected - Actual;

    /// <summary>Writes the store applied (naive: one per increment, even the ones later erased).</summary>
    public required long Writes { get; init; }

    /// <summary>Compare-and-swap conflicts that were retried (optimistic mode).</summary>
    public required long Conflicts { get; init; }

    /// <summary>Increments abandoned after the retry limit (optimistic mode; 0 in a healthy run).</summary>
    public required long GaveUp { get; init; }

    /// <summary>Most attempts one increment needed (optimistic mode; 1 otherwise).</summary>
    public required int MaxAttempts { get; init; }

    /// <summary>Virtual time the run took, in milliseconds.</summary>
    public required long VirtualMs { get; init; }
}

/// <summary>
/// The shared-counter example: N agents each add 1 to one counter M times, with a little work between
/// increments and a short think between reading and writing. Naive read-modify-write loses counts; an atomic
/// <c>increment</c> patch and a compare-and-swap loop (<see cref="ConcordSession.UpdateAsync(string, Func{ConcordRecord?, CancellationToken, ValueTask{JsonElement?}}, UpdateOptions?, CancellationToken)"/>) do not.
/// </summary>
/// <remarks>Deterministic for a seed on a fresh store (see <see cref="VirtualTimeProvider"/>).</remarks>
public sealed class CounterScenario
{
    /// <summary>The counter's key; its value is <c>{"value": n}</c>.</summary>
    public const string Key = "counters/page-views";

    /// <summary>Retry policy of the compare-and-swap agents: generous, so contention never makes one give up.</summary>
    public static RetryOptions CasRetry { get; } = new() { MaxAttempts = 100, BaseDelay = TimeSpan.FromMilliseconds(2), MaxDelay = TimeSpan.FromMilliseconds(100) };

    private readonly int _seed;

    /// <summary>Creates the scenario.</summary>
    /// <param name="seed">Fixes work and think times.</param>
    /// <param name="agents">Number of agents (≥ 1).</param>
    /// <param name="increments">Increments per agent (≥ 1).</param>
    public CounterScenario(int seed, int agents, int increments)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(agents, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(increments, 1);
        _seed = seed;
        Agents = agents;
        Increments = increments;
    }

    /// <summary>Number of agents.</summary>
    public int Agents { get; }

    /// <summary>
    /// Real seconds per virtual second (<see cref="VirtualTimeProvider.Pace"/>): 1.0 runs think times in real time so a
    /// person can watch the run on the dashboard; the outcome is the same at any pace. <value>Default: 0 (as fast as possible).</value>
    /// </summary>
    public double Pace { get; init; }

    /// <summary>Increments per agent.</summary>
    public int Increments { get; }

    /// <summary>Resets the counter in <paramref name="ns"/> to 0 and runs the agents in virtual time.</summary>
    /// <param name="store">The store; give it its own clock (not the virtual one).</param>
    /// <param name="ns">Namespace; naive mode needs it non-strict (blind writes allowed).</param>
    /// <param name="mode">How the agents increment.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    public async Task<CounterRun> RunAsync(IConcordStore store, string ns, ConcurrencyMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var setup = new ConcordSession(store, ns, "setup");
        var existing = await setup.GetAsync(Key, cancellationToken).ConfigureAwait(false);
        var reset = await setup.PutAsync(Key, Counter(0), Expect.Version(existing?.Version ?? 0), cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!reset.IsApplied) throw new InvalidOperationException($"Could not reset {Key}: {reset}");

        var time = new VirtualTimeProvider { Pace = Pace };
        var agents = new CounterAgent[Agents];
        var runs = new List<Func<CancellationToken, Task>>(Agents);
        for (var i = 0; i < Agents; i++)
        {
            var agent = agents[i] = new CounterAgent(Increments, new Random(ScenarioRandom.Derive(_seed, 1000 + i)));
            var session = new ConcordSession(store, ns, $"agent-{i + 1}", new SessionOptions
            {
                TimeProvider = time,
                Randomizer = new SeededRandomizer(ScenarioRandom.Derive(_seed, 2000 + i)),
                Retry = CasRetry,
            });
            runs.Add(ct => agent.RunAsync(session, time, mode, ct));
        }
        var elapsed = await time.RunAsync(runs, cancellationToken).ConfigureAwait(false);
        var final = await setup.GetAsync(Key, cancellationToken).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"{Key} disappeared during the run");
        return new CounterRun
        {
            Mode = mode,
            Agents = Agents,
            Increments = Increments,
            Actual = ValueOf(final),
            Writes = agents.Sum(a => (long)a.Writes),
            Conflicts = agents.Sum(a => (long)a.Conflicts),
            GaveUp = agents.Sum(a => (long)a.GaveUp),
            MaxAttempts = agents.Max(a => a.MaxAttempts),
            VirtualMs = (long)elapsed.TotalMilliseconds,
        };
    }

    internal static JsonElement Counter(long value) => JsonSerializer.SerializeToElement(new { value });

    internal static long ValueOf(ConcordRecord? record) =>
        record is { IsDeleted: false } && record.Value.TryGetProperty("value", out var v) ? (long)v.GetDouble() : 0;
}

/// <summary>One counter agent: <c>increments</c> times, works a little (1–20 ms), then adds 1 the way its mode says.</summary>
/// <remarks>Single use. Waits only through <see cref="Task.Delay(TimeSpan, TimeProvider, CancellationToken)"/> on the given clock.</remarks>
public sealed class CounterAgent(int increments, Random random)
{
    /// <summary>Writes applied.</summary>
    public int Writes { get; private set; }

    /// <summary>Compare-and-swap attempts that conflicted and were retried.</summary>
    public int Conflicts { get; private set; }

    /// <summary>Increments abandoned at the retry limit.</summary>
    public int GaveUp { get; private set; }

    /// <summary>Most attempts one increment needed.</summary>
    public int MaxAttempts { get; private set; } = 1;

    /// <summary>Runs the agent against <see cref="CounterScenario.Key"/>.</summary>
    public async Task RunAsync(ConcordSession session, TimeProvider time, ConcurrencyMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(time);
        for (var i = 0; i < increments; i++)
        {
            await Task.Delay(ScenarioRandom.Milliseconds(random, 1, 20), time, cancellationToken).ConfigureAwait(false);
            switch (mode)
            {
                case ConcurrencyMode.Naive:
                {
                    var read = await session.GetAsync(CounterScenario.Key, cancellationToken).ConfigureAwait(false);
                    await ThinkAsync(time, cancellationToken).ConfigureAwait(false);
                    var write = await session.PutAsync(CounterScenario.Key, CounterScenario.Counter(CounterScenario.ValueOf(read) + 1), Expect.Any,
                        cancellationToken: cancellationToken).ConfigureAwait(false);
                    if (write.IsApplied) Writes++;
                    break;
                }
                case ConcurrencyMode.Optimistic:
                {
                    var update = await session.UpdateAsync(CounterScenario.Key, async (current, ct) =>
                    {
                        await ThinkAsync(time, ct).ConfigureAwait(false);
                        return CounterScenario.Counter(CounterScenario.ValueOf(current) + 1);
                    }, cancellationToken: cancellationToken).ConfigureAwait(false);
                    if (update.IsApplied) Writes++;
                    else GaveUp++;
                    Conflicts += update.Attempts - (update.IsApplied ? 1 : 0);
                    MaxAttempts = Math.Max(MaxAttempts, update.Attempts);
                    break;
                }
                case ConcurrencyMode.Patch:
                {
                    await ThinkAsync(time, cancellationToken).ConfigureAwait(false);
                    var write = await session.IncrementAsync(CounterScenario.Key, cancellationToken: cancellationToken).ConfigureAwait(false);
                    if (write.IsApplied) Writes++;
                    break;
                }
                default:
                    throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown mode");
            }
        }
    }

    private Task ThinkAsync(TimeProvider time, CancellationToken cancellationToken) =>
        Task.Delay(ScenarioRandom.Milliseconds(random, 1, 10), time, cancellationToken);
}
