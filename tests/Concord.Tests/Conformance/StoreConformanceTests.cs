namespace Concord.Tests.Conformance;

/// <summary>
/// The core contract of <see cref="IConcordStore"/> (DESIGN.md "Data model", "Writes", "Idempotency", "Streams"),
/// as one abstract suite every backend subclasses: the embedded engine in memory and embedded mode, and later
/// PostgreSQL, Redis and the HTTP client. The suite is split by area into partial files:
/// State, Patch, Transactions, OptimisticTransactions, Update, Idempotency, Watch, List, Ttl, BadInput.
/// </summary>
/// <remarks>
/// Tests state behaviour through the public contract only. Where a backend cannot honour a test's setup (a fake
/// clock, a revision retention, a restart), the test is skipped with the backend's reason rather than weakened.
/// </remarks>
public abstract partial class StoreConformanceTests : StoreTestBase
{
    /// <summary>A store with default options plus a session on it.</summary>
    protected async Task<(IConcordStore Store, ConcordSession Session)> OpenAsync(StoreFixtureOptions? options = null, string agent = "agent-1")
    {
        var store = await OpenStoreAsync(options);
        return (store, Session(store, agent));
    }
}
