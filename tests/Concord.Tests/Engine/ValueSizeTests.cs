using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Engine;

public sealed class ValueSizeTests
{
    [Fact]
    public async Task PutAsync_ValueAtTheLimit_Applied()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { MaxValueBytes = 16 });
        var value = JsonDocument.Parse("\"12345678901234\"").RootElement.Clone(); // 16 bytes

        var result = await store.PutAsync("t", "k", value, cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(result.IsApplied);
    }

    [Fact]
    public async Task PutAsync_MultiByteValueOverTheLimit_ThrowsWithUtf8Size()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { MaxValueBytes = 16 });
        // 10 characters but 18 UTF-8 bytes: 'é' is 2 bytes.
        var value = JsonDocument.Parse("\"éééééééé\"").RootElement.Clone();

        var e = await Assert.ThrowsAsync<ValueTooLargeException>(async () =>
            await store.PutAsync("t", "k", value, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(18, e.Size);
        Assert.Equal(16, e.Limit);
    }

    [Fact]
    public async Task PatchAsync_ResultOverTheLimit_Throws()
    {
        await using var store = ConcordEngine.CreateInMemory(new ConcordEngineOptions { MaxValueBytes = 16 });
        var patch = JsonPatch.Create().Add("/text", "0123456789").Build(); // {"text":"0123456789"} is 19 bytes

        await Assert.ThrowsAsync<ValueTooLargeException>(async () =>
            await store.PatchAsync("t", "k", patch, cancellationToken: TestContext.Current.CancellationToken));
    }
}
