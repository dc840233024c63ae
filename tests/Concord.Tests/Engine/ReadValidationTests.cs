using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Engine;

/// <summary>Reads validate names only on a miss (a stored key was validated when written); these pin that invalid names still throw.</summary>
public sealed class ReadValidationTests
{
    private static async Task<ConcordEngine> StoreWithKeyAsync()
    {
        var store = ConcordEngine.CreateInMemory();
        await store.PutAsync("t", "a/b", JsonDocument.Parse("1").RootElement.Clone(), cancellationToken: TestContext.Current.CancellationToken);
        return store;
    }

    [Theory]
    [InlineData("a//b")]
    [InlineData("/a/b")]
    [InlineData("a/b/")]
    [InlineData("a/../b")]
    [InlineData("")]
    public async Task GetAsync_InvalidKeyInExistingNamespace_Throws(string key)
    {
        await using var store = await StoreWithKeyAsync();

        await Assert.ThrowsAsync<InvalidKeyException>(async () => await store.GetAsync("t", key, cancellationToken: TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task GetAsync_InvalidNamespace_Throws()
    {
        await using var store = await StoreWithKeyAsync();

        await Assert.ThrowsAsync<InvalidKeyException>(async () => await store.GetAsync("t/x", "a/b", cancellationToken: TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task GetAsync_NullKey_ThrowsArgumentNull()
    {
        await using var store = await StoreWithKeyAsync();

        await Assert.ThrowsAsync<ArgumentNullException>(async () => await store.GetAsync("t", null!, cancellationToken: TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task GetAsync_ExistingKeyAfterDispose_ThrowsStoreUnavailable()
    {
        var store = await StoreWithKeyAsync();
        await store.DisposeAsync();

        await Assert.ThrowsAsync<StoreUnavailableException>(async () => await store.GetAsync("t", "a/b", cancellationToken: TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task GetAsync_ExistingKeyAtFutureRevision_ThrowsUnknownRevision()
    {
        await using var store = await StoreWithKeyAsync();

        await Assert.ThrowsAsync<UnknownRevisionException>(async () =>
            await store.GetAsync("t", "a/b", new ReadOptions { AtRevision = 99 }, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task GetAsync_ExistingKey_ReturnsIt()
    {
        await using var store = await StoreWithKeyAsync();

        var record = await store.GetAsync("t", "a/b", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(1, record!.Value.GetInt32());
    }
}
