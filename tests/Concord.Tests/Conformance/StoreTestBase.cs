using System.Text.Json;
using System.Text.Json.Nodes;

namespace Concord.Tests.Conformance;

/// <summary>
/// How a conformance test wants its store configured. Every backend maps these onto its own settings;
/// null means "the backend's default".
/// </summary>
public sealed record StoreFixtureOptions
{
    /// <summary>Backend defaults, non-strict.</summary>
    public static StoreFixtureOptions Default { get; } = new();

    /// <summary>Refuse blind overwrites and blind deletes of existing keys in every namespace.</summary>
    public bool StrictMode { get; init; }

    /// <summary>Largest accepted value in UTF-8 bytes of its JSON text.</summary>
    public int? MaxValueBytes { get; init; }

    /// <summary>How long idempotency records are kept.</summary>
    public TimeSpan? IdempotencyRetention { get; init; }

    /// <summary>
    /// The store's clock (commit times, TTLs, idempotency retention). Tests pass a FakeTimeProvider only after
    /// checking <see cref="StoreTestBase.FakeTimeUnsupportedReason"/>.
    /// </summary>
    public TimeProvider? TimeProvider { get; init; }

    /// <summary>How many recent revisions stay readable (snapshot reads, watch from a revision).</summary>
    public long? RetainedRevisions { get; init; }

    /// <summary>How often expired keys are turned into tombstones.</summary>
    public TimeSpan? ExpirySweepInterval { get; init; }
}

/// <summary>
/// Base of the backend-neutral test suites (conformance, model-based, stress). A backend subclasses each suite and
/// implements <see cref="CreateStoreAsync"/>; the capability members say which tests it can honour, and tests it
/// cannot honour are reported as skipped with the backend's reason.
/// </summary>
/// <remarks>
/// Stores created through <see cref="OpenStoreAsync"/> are disposed after the test, then <see cref="CleanupAsync"/> runs
/// (temp directories, databases). One test class instance runs one test, so nothing leaks between tests.
/// </remarks>
public abstract class StoreTestBase : IAsyncLifetime
{
    /// <summary>The namespace most tests use.</summary>
    protected const string Ns = "conf";

    /// <summary>A fixed epoch for fake clocks, so commit times in failures are readable.</summary>
    protected static readonly DateTimeOffset Epoch = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly List<IConcordStore> _stores = [];

    /// <summary>Creates a fresh, empty store configured as <paramref name="options"/> asks.</summary>
    protected abstract Task<IConcordStore> CreateStoreAsync(StoreFixtureOptions options);

    /// <summary>Null when the backend's clock can be replaced by a FakeTimeProvider; otherwise why not (TTL, retention and HLC tests are skipped).</summary>
    protected virtual string? FakeTimeUnsupportedReason => null;

    /// <summary>Null when <see cref="StoreFixtureOptions.RetainedRevisions"/> is honoured; otherwise why not (compaction tests are skipped).</summary>
    protected virtual string? RetentionUnsupportedReason => null;

    /// <summary>True when <see cref="RestartAsync"/> can close and reopen a store on the same durable state.</summary>
    protected virtual bool SupportsRestart => false;

    /// <summary>Closes <paramref name="store"/> and reopens its durable state (same options).</summary>
    protected virtual Task<IConcordStore> RestartAsync(IConcordStore store) =>
        throw new NotSupportedException("This backend cannot restart");

    /// <summary>Multiplier for stress-test iteration counts (durable backends with per-commit fsync use less than 1).</summary>
    protected virtual double StressScale => 1.0;

    /// <summary>Removes whatever the backend created besides the stores (runs after every store is disposed).</summary>
    protected virtual ValueTask CleanupAsync() => ValueTask.CompletedTask;

    /// <summary>The test's cancellation token.</summary>
    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Opens a store that is disposed when the test ends.</summary>
    protected async Task<IConcordStore> OpenStoreAsync(StoreFixtureOptions? options = null)
    {
        var store = await CreateStoreAsync(options ?? StoreFixtureOptions.Default);
        lock (_stores) _stores.Add(store);
        return store;
    }

    /// <summary>Restarts a store opened by <see cref="OpenStoreAsync"/>; the new instance is disposed when the test ends.</summary>
    protected async Task<IConcordStore> RestartStoreAsync(IConcordStore store)
    {
        var reopened = await RestartAsync(store);
        lock (_stores) _stores.Add(reopened);
        return reopened;
    }

    /// <summary>Skips the test unless the backend honours a fake clock.</summary>
    protected void RequireFakeTime() => Assert.SkipWhen(FakeTimeUnsupportedReason is not null, FakeTimeUnsupportedReason ?? "");

    /// <summary>Skips the test unless the backend honours a configured revision retention.</summary>
    protected void RequireRetention() => Assert.SkipWhen(RetentionUnsupportedReason is not null, RetentionUnsupportedReason ?? "");

    /// <summary>Skips the test unless the backend can restart.</summary>
    protected void RequireRestart() => Assert.SkipUnless(SupportsRestart, "This backend keeps no durable state to restart from");

    /// <summary>Scales a stress count, keeping at least <paramref name="minimum"/>.</summary>
    protected int Scaled(int count, int minimum = 1) => Math.Max(minimum, (int)(count * StressScale));

    ValueTask IAsyncLifetime.InitializeAsync() => ValueTask.CompletedTask;

    async ValueTask IAsyncDisposable.DisposeAsync()
    {
        List<IConcordStore> stores;
        lock (_stores) stores = [.. _stores];
        foreach (var store in stores) await store.DisposeAsync();
        await CleanupAsync();
        GC.SuppressFinalize(this);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Parses JSON text into a standalone element.</summary>
    protected static JsonElement J(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    /// <summary>The value <c>{"n": n}</c>.</summary>
    protected static JsonElement N(long n) => J($$"""{"n":{{n}}}""");

    /// <summary>Reads <c>/n</c> of a record's value.</summary>
    protected static long NOf(ConcordRecord? record)
    {
        Assert.NotNull(record);
        return record.Value.GetProperty("n").GetInt64();
    }

    /// <summary>A session for <paramref name="agent"/> in <paramref name="ns"/>.</summary>
    protected static ConcordSession Session(IConcordStore store, string agent = "agent-1", string ns = Ns, SessionOptions? options = null) =>
        new(store, ns, agent, options);

    /// <summary>Asserts that two JSON values are equal (numbers by value, members in any order).</summary>
    protected static void AssertJson(string expected, JsonElement actual) =>
        Assert.True(JsonElement.DeepEquals(J(expected), actual), $"expected {expected} but was {(actual.ValueKind == JsonValueKind.Undefined ? "undefined" : actual.GetRawText())}");

    /// <summary>Asserts that two JSON values are equal.</summary>
    protected static void AssertJson(JsonElement expected, JsonElement actual) => AssertJson(expected.GetRawText(), actual);

    /// <summary>A JSON node from text (for patch operands).</summary>
    protected static JsonNode? Node(string json) => JsonNode.Parse(json);

    /// <summary>Everything observable about a namespace: the store revision plus every live record.</summary>
    protected static async Task<string> CaptureAsync(IConcordStore store, string ns = Ns)
    {
        var revision = await store.GetRevisionAsync(Ct);
        var lines = new List<string> { $"revision {revision}" };
        string? after = null;
        do
        {
            var page = await store.ListAsync(ns, new ListRequest { After = after, Limit = 1000, AtRevision = revision }, Ct);
            lines.AddRange(page.Records.Select(r => $"{r.Key} v{r.Version} r{r.Revision} {r.Value.GetRawText()}"));
            after = page.NextAfter;
        }
        while (after is not null);
        return string.Join('\n', lines);
    }

    /// <summary>
    /// Asserts that <paramref name="call"/> throws <typeparamref name="TException"/> whose message contains every
    /// fragment (case-insensitive), and that the namespace's state and the store revision are unchanged.
    /// </summary>
    protected static async Task<TException> AssertRejectedAsync<TException>(IConcordStore store, Func<Task> call, params string[] messageFragments)
        where TException : Exception
    {
        var before = await CaptureAsync(store);
        var e = await Assert.ThrowsAsync<TException>(call);
        foreach (var fragment in messageFragments)
            Assert.Contains(fragment, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, await CaptureAsync(store));
        return e;
    }

    /// <summary>Reads events from a watch until <paramref name="count"/> arrived (fails rather than hangs if they never do).</summary>
    protected static async Task<List<ChangeEvent>> TakeAsync(IAsyncEnumerator<ChangeEvent> watch, int count)
    {
        var events = new List<ChangeEvent>(count);
        while (events.Count < count)
        {
            var next = watch.MoveNextAsync().AsTask();
            // A hang guard, not a timing assertion: a missing event fails the test instead of stalling the run.
            var finished = await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(15), Ct));
            Assert.True(finished == next, $"the watch delivered only {events.Count} of {count} expected events");
            Assert.True(await next, $"the watch ended after {events.Count} of {count} expected events");
            events.Add(watch.Current);
        }
        return events;
    }

    /// <summary>Reads the first event of a watch (for tests expecting the watch to fail); gives up after a hang guard instead of stalling the run.</summary>
    protected static async Task FirstEventAsync(IConcordStore store, WatchRequest request, string ns = Ns)
    {
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        guard.CancelAfter(TimeSpan.FromSeconds(10));
        await foreach (var _ in store.WatchAsync(ns, request, guard.Token)) break;
    }

    /// <summary>Starts a watch and returns its enumerator (the subscription is registered on the first MoveNextAsync).</summary>
    protected static IAsyncEnumerator<ChangeEvent> Watch(IConcordStore store, WatchRequest request, CancellationToken cancellationToken, string ns = Ns) =>
        store.WatchAsync(ns, request, cancellationToken).GetAsyncEnumerator(cancellationToken);
}
