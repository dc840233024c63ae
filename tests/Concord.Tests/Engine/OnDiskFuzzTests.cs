using System.Text.Json;
using Concord.Engine;

namespace Concord.Tests.Engine;

/// <summary>
/// Random damage to real log segments and snapshots (flipped bytes, zeroed runs, cuts, inserted and appended garbage):
/// opening the directory must either throw <see cref="CorruptDataException"/> or load exactly a prefix of the
/// acknowledged commits — and a shorter prefix only when the damage was in the newest segment (a torn tail).
/// Never silently garbage.
/// </summary>
[Trait("Category", "Stress")]
public sealed class OnDiskFuzzTests
{
    private const string Ns = "t";
    private const int Commits = 18;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Open_RandomlyDamagedSegmentsAndSnapshots_ThrowsCorruptDataOrLoadsAPrefix()
    {
        using var template = await TemplateAsync();
        var random = new Random(20261128);
        int corrupt = 0, full = 0, prefix = 0;
        for (var iteration = 0; iteration < 150; iteration++)
        {
            using var dir = new TempDataDirectory(template.Path);
            var files = dir.Segments().Concat(dir.Snapshots()).ToList();
            var newest = dir.Segments()[^1];
            var target = files[random.Next(files.Count)];
            var bytes = File.ReadAllBytes(target);
            var damaged = Damage(bytes, random, out var what);
            File.WriteAllBytes(target, damaged);
            var label = $"iteration {iteration}: {what} in {Path.GetFileName(target)} ({bytes.Length} bytes)";

            ConcordEngine engine;
            try
            {
                engine = await dir.OpenAsync();
            }
            catch (CorruptDataException)
            {
                corrupt++;
                continue;
            }
            await using (engine)
            {
                var page = await engine.ListAsync(Ns, new ListRequest { Limit = 1000 }, Ct);
                var loaded = page.Records.Count;
                Assert.True(loaded <= Commits, $"{label}: {loaded} keys loaded, only {Commits} were written");
                for (var i = 1; i <= Commits; i++)
                {
                    var r = await engine.GetAsync(Ns, $"k/{i}", cancellationToken: Ct);
                    if (i <= loaded)
                    {
                        Assert.True(r is not null, $"{label}: loaded {loaded} keys but k/{i} is missing (not a prefix)");
                        Assert.True(r.Value.TryGetProperty("i", out var v) && v.GetInt32() == i, $"{label}: k/{i} loaded as {r.Value}");
                    }
                    else
                    {
                        Assert.True(r is null, $"{label}: k/{i} present although only {loaded} keys loaded (not a prefix)");
                    }
                }
                if (loaded == Commits)
                {
                    full++;
                }
                else
                {
                    Assert.True(target == newest, $"{label}: commits lost ({loaded}/{Commits}) from damage outside the newest segment, without CorruptDataException");
                    prefix++;
                }
            }
        }
        // The budget really exercised both outcomes.
        Assert.True(corrupt > 20 && prefix + full > 10, $"corrupt {corrupt}, full {full}, prefix {prefix}");
    }

    /// <summary>A snapshot (revisions 1..6) plus three segments: 7..10, 11..14, 15..18 (the newest).</summary>
    private static async Task<TempDataDirectory> TemplateAsync()
    {
        var dir = new TempDataDirectory();
        await using (var engine = await dir.OpenAsync())
        {
            await WriteAsync(engine, 1, 6);
            await engine.SnapshotAsync(Ct);
            await WriteAsync(engine, 7, 4);
        }
        await using (var engine = await dir.OpenAsync()) await WriteAsync(engine, 11, 4);
        await using (var engine = await dir.OpenAsync()) await WriteAsync(engine, 15, 4);
        Assert.NotEmpty(dir.Snapshots());
        return dir;
    }

    private static async Task WriteAsync(ConcordEngine engine, int from, int count)
    {
        for (var i = from; i < from + count; i++)
        {
            var w = await engine.PutAsync(Ns, $"k/{i}", JsonDocument.Parse($$"""{"i":{{i}},"pad":"{{new string('p', i * 7)}}"}""").RootElement.Clone(),
                new WriteOptions { Expect = Expect.Absent }, Ct);
            Assert.True(w.IsApplied, w.ToString());
        }
    }

    private static byte[] Damage(byte[] bytes, Random random, out string what)
    {
        var list = new List<byte>(bytes);
        var kinds = new List<string>();
        var n = 1 + random.Next(3);
        for (var k = 0; k < n; k++)
        {
            var at = list.Count == 0 ? 0 : random.Next(list.Count);
            switch (random.Next(5))
            {
                case 0 when list.Count > 0:
                    list[at] ^= (byte)(1 + random.Next(255));
                    kinds.Add($"flip@{at}");
                    break;
                case 1 when list.Count > 0:
                    var len = Math.Min(list.Count - at, 1 + random.Next(16));
                    for (var j = 0; j < len; j++) list[at + j] = 0;
                    kinds.Add($"zero@{at}+{len}");
                    break;
                case 2:
                    list.RemoveRange(at, list.Count - at);
                    kinds.Add($"cut@{at}");
                    break;
                case 3:
                    var insert = new byte[1 + random.Next(12)];
                    random.NextBytes(insert);
                    list.InsertRange(at, insert);
                    kinds.Add($"insert@{at}+{insert.Length}");
                    break;
                default:
                    var tail = new byte[1 + random.Next(40)];
                    random.NextBytes(tail);
                    list.AddRange(tail);
                    kinds.Add($"append+{tail.Length}");
                    break;
            }
        }
        what = string.Join(",", kinds);
        return [.. list];
    }
}
