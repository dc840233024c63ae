using System.Text;
using static Concord.Server.Tests.TestHttp;

namespace Concord.Server.Tests.Http;

/// <summary>
/// Random and mutated requests — bad JSON, oversized and deeply nested bodies, odd keys (unicode, control characters,
/// <c>..</c>), malformed preconditions, fences, idempotency keys, TTLs and query strings, wrong methods — never get a
/// 5xx; every error is problem+json; and a canary key in another namespace is never touched. (NUL in a path is left
/// out: the in-process test client itself refuses it before the server sees it; Kestrel answers 400.)
/// </summary>
[Trait("Category", "Stress")]
public sealed class HttpFuzzTests
{
    private static readonly string[] Methods = ["GET", "PUT", "PATCH", "DELETE", "POST", "HEAD", "OPTIONS", "FOO"];

    private static readonly string[] Namespaces = ["a", "b", "x-y", "ns%20sp", "%2e%2e", "..", "ключ", "_sys", "a%01", new string('n', 300)];

    private static readonly string[] Keys =
    [
        "k", "x/y", "a/b/c", "..", "../..", "a/../b", "./a", "%2e%2e/%2e%2e", "ключ/🔑", "%F0%9F%94%91", "a%01b", "%7F", "a//b", "/", "",
        "_sys/locks/x", "_sys/config", " spaced ", "%20", new string('k', 3000), "a%2Fb", "%", "%zz", "tab%09key", "new%0Aline", "emoji/😀/x",
    ];

    private static readonly string[] Bodies =
    [
        """{"n":1}""", """{"n":"x","nested":{"a":[1,2,3]}}""", "1", "\"str\"", "null", "true", "[]", "{", "[1,2", "nul", "{\"a\":}", "\u0000\u0001",
        """[{"op":"increment","path":"/n","value":1}]""", """[{"op":"nope","path":"/n"}]""", """[{"op":"add","path":"n","value":1}]""",
        """[{"op":"increment","path":"/n","value":"x"}]""", """[{"op":"remove","path":"/missing"}]""", """[{"op":"move","from":"/a","path":"/a/b"}]""",
        """{"then":[{"kind":"put","key":"k","value":1}]}""", """{"then":[{"kind":"get","key":".."}]}""", """{"then":[{"kind":"zap","key":"k"}]}""",
        """{"compares":[{"key":"k","target":"version","result":"equal","value":"x"}],"then":[]}""", """{"then":null}""", """{"then":[{}]}""",
        """{"name":"l","ttlMs":-5}""", """{"name":"l","ttlMs":0,"waitMs":-1}""", """{"name":"l","ttlMs":9223372036854775807}""", """{"name":"l","mode":"weird"}""",
        """{"name":"l","leaseId":"nope"}""", """{"name":"","ttlMs":1000}""", """{"name":"l","waitMs":99999999999}""",
    ];

    private static readonly (string Name, string[] Values)[] Headers =
    [
        ("If-Match", ["\"1\"", "*", "abc", "\"-1\"", "\"99999999999999999999\"", "W/\"1\"", "\"1\", \"2\"", ""]),
        ("If-None-Match", ["*", "\"1\"", "garbage"]),
        ("Idempotency-Key", ["k1", new string('i', 300), "utf-8''%ZZ", "utf-8''%F0%9F%94%91", "ключ"]),
        ("Concord-Fence", ["l:1", "l:0", ":5", "abc", "l:-3", "l:99999999999999999999", "utf-8''%E0%A4"]),
        ("Concord-Ttl", ["-1", "abc", "1e308", "NaN", "0.001", "Infinity"]),
        ("Concord-Agent", [new string('g', 200), "agent", "utf-8''%C3%A9"]),
        ("Last-Event-ID", ["1.0", "x", "-1.2", "99999999999999999999.1", "1.2.3"]),
        ("Accept", ["application/vnd.concord.record+json", "text/plain", "*/*"]),
        ("Content-Type", ["text/plain", "application/xml", "application/json; charset=latin1"]),
    ];

    private static readonly string[] Queries = ["", "?revision=-1", "?revision=abc", "?revision=99999999999999999999", "?revision=1", "?limit=abc", "?limit=99999999999",
        "?limit=0", "?prefix=%00", "?after=..", "?fromRevision=x", "?key=..", "?fromRevision=999999"];

    [Fact]
    public async Task RandomRequests_NeverFailWith5xx_AlwaysProblemJson_CanaryUntouched()
    {
        await using var host = await ServerHost.StartAsync(o => { o.MaxRequestBodyBytes = 64 * 1024; o.MaxValueBytes = 16 * 1024; });
        var canary = await host.Store.PutAsync("canary", "c", System.Text.Json.JsonDocument.Parse("""{"alive":true}""").RootElement.Clone(), new WriteOptions { Expect = Expect.Absent }, Ct);
        var random = new Random(42);
        var statuses = new Dictionary<int, int>();
        for (var i = 0; i < 1500; i++)
        {
            var method = Methods[random.Next(Methods.Length)];
            var ns = Namespaces[random.Next(Namespaces.Length)];
            var key = Keys[random.Next(Keys.Length)];
            var path = random.Next(8) switch
            {
                0 => $"v1/ns/{ns}/state",
                1 => $"v1/ns/{ns}/txn",
                2 => $"v1/ns/{ns}/locks/" + (random.Next(4) switch { 0 => "acquire", 1 => "renew", 2 => "release", _ => "" }),
                3 => $"v1/ns/{ns}/watch",
                4 => random.Next(3) switch { 0 => "healthz", 1 => "v1/nope", _ => "v1/ns//state/x" },
                _ => $"v1/ns/{ns}/state/{key}",
            } + Queries[random.Next(Queries.Length)];
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method is not ("GET" or "HEAD") || random.Next(4) == 0)
            {
                var body = random.Next(12) switch
                {
                    0 => new string(' ', 70 * 1024) + "{}", // over the body limit
                    1 => new string('[', 300) + new string(']', 300), // deeper than the parser allows
                    2 => "{\"big\":\"" + new string('x', 20 * 1024) + "\"}", // over the value limit
                    3 => Encoding.Latin1.GetString(RandomBytes(random)),
                    4 => Mutate(Bodies[random.Next(Bodies.Length)], random),
                    _ => Bodies[random.Next(Bodies.Length)],
                };
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }
            for (var h = random.Next(4); h > 0; h--)
            {
                var (name, values) = Headers[random.Next(Headers.Length)];
                var value = values[random.Next(values.Length)];
                if (name == "Content-Type") request.Content?.Headers.TryAddWithoutValidation(name, value);
                else request.Headers.TryAddWithoutValidation(name, value);
            }
            var label = $"#{i} {method} {(path.Length > 120 ? path[..120] + "…" : path)} [{string.Join("; ", request.Headers.Select(x => $"{x.Key}: {string.Join(",", x.Value)}"))}]";
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            using var response = await host.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            Assert.True(status < 500, $"{label} → {status}: {await ReadSomeAsync(response, timeout)}");
            // A client that asked only for text/plain may get the framework's plain-text status page (content negotiation).
            var acceptsJson = !request.Headers.Accept.Any() || request.Headers.Accept.Any(a => a.MediaType is "*/*" || a.MediaType!.Contains("json", StringComparison.Ordinal));
            if (status >= 400 && method != "HEAD" && acceptsJson)
            {
                var text = await ReadSomeAsync(response, timeout);
                Assert.True(response.Content.Headers.ContentType?.MediaType == "application/problem+json", $"{label} → {status} as {response.Content.Headers.ContentType}: {text}");
            }
            await timeout.CancelAsync(); // ends a watch stream
        }
        var after = await host.Store.GetAsync("canary", "c", null, Ct);
        Assert.NotNull(after);
        Assert.Equal(canary.Version, after.Version);
        Assert.Equal(canary.Record!.Revision, after.Revision);
        Assert.True(statuses.Keys.Count(s => s >= 400) >= 5, string.Join(", ", statuses.Select(s => $"{s.Key}×{s.Value}")));
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[1 + random.Next(200)];
        random.NextBytes(bytes);
        return bytes;
    }

    private const string Alphabet = "{}[]\",:0x\\\u0000é";

    private static string Mutate(string text, Random random)
    {
        if (text.Length == 0) return "x";
        var chars = text.ToCharArray();
        for (var n = 1 + random.Next(3); n > 0; n--) chars[random.Next(chars.Length)] = Alphabet[random.Next(Alphabet.Length)];
        return random.Next(3) == 0 ? new string(chars)[..random.Next(chars.Length)] : new string(chars);
    }

    private static async Task<string> ReadSomeAsync(HttpResponseMessage response, CancellationTokenSource timeout)
    {
        if (response.Content.Headers.ContentType?.MediaType == "text/event-stream") return "(event stream)";
        var text = await response.Content.ReadAsStringAsync(timeout.Token);
        return text.Length > 300 ? text[..300] : text;
    }
}
