using System.Text.Json;
using CsCheck;

namespace Concord.Tests.Causality;

public sealed class VersionVectorTests
{
    private static readonly Gen<VersionVector> Vectors =
        Gen.Select(Gen.Int[0, 3], Gen.Long[0, 5]).Array[0, 5]
            .Select(pairs => VersionVector.Create(pairs.Select(p => new KeyValuePair<string, long>("n" + p.Item1, p.Item2))));

    [Fact]
    public void Join_IsTheLeastUpperBound()
    {
        Gen.Select(Vectors, Vectors, Vectors).Sample((a, b, c) =>
        {
            var j = a.Join(b);
            Assert.True(j.Descends(a) && j.Descends(b));
            Assert.Equal(j, b.Join(a));
            Assert.Equal(a.Join(b).Join(c), a.Join(b.Join(c)));
            Assert.Equal(a, a.Join(a));
            // Least: anything above both is above the join.
            if (c.Descends(a) && c.Descends(b)) Assert.True(c.Descends(j));
        }, iter: 500);
    }

    [Fact]
    public void CompareTo_IsConsistentWithDescends()
    {
        Gen.Select(Vectors, Vectors).Sample((a, b) =>
        {
            var order = a.CompareTo(b);
            var reverse = b.CompareTo(a);
            Assert.Equal(order switch
            {
                CausalOrder.Before => CausalOrder.After,
                CausalOrder.After => CausalOrder.Before,
                _ => order,
            }, reverse);
            Assert.Equal(order is CausalOrder.Equal or CausalOrder.After, a.Descends(b));
            Assert.Equal(order == CausalOrder.Equal, a.Equals(b));
        }, iter: 500);
    }

    [Fact]
    public void Encodings_RoundTrip()
    {
        Vectors.Sample(v =>
        {
            Assert.Equal(v, VersionVector.FromJson(v.ToJson()));
            Assert.Equal(v, VersionVector.Parse(v.ToString()));
        }, iter: 200);
        Assert.Equal("""{"n1":42,"n2":7}""", VersionVector.Parse("n2:7, n1:42").ToJson().GetRawText());
    }

    [Fact]
    public void Covers_And_With()
    {
        var v = VersionVector.Of(new Dot("n1", 5));
        Assert.True(v.Covers(new Dot("n1", 5)));
        Assert.True(v.Covers(new Dot("n1", 1)));
        Assert.False(v.Covers(new Dot("n1", 6)));
        Assert.False(v.Covers(new Dot("n2", 1)));
        Assert.Equal("n1:5,n2:1", v.With(new Dot("n2", 1)).ToString());
        Assert.Same(v, v.With(new Dot("n1", 3)));
    }

    [Theory]
    [InlineData("n1")]
    [InlineData("n1:x")]
    [InlineData(":3")]
    [InlineData("n1:-2")]
    public void Parse_Malformed_Throws(string text) => Assert.Throws<InvalidRequestException>(() => VersionVector.Parse(text));

    [Fact]
    public void FromJson_Malformed_Throws()
    {
        Assert.Throws<InvalidRequestException>(() => VersionVector.FromJson(JsonDocument.Parse("""{"n1":"x"}""").RootElement));
        Assert.Throws<InvalidRequestException>(() => VersionVector.FromJson(JsonDocument.Parse("""[1]""").RootElement));
    }
}

public sealed class CausalJsonTests
{
    private sealed record Wire(VersionVector? Context, CausalStamp? Causal);

    [Fact]
    public void SystemTextJson_UsesTheDocumentedEncodings()
    {
        var wire = new Wire(VersionVector.Parse("n1:3"), new CausalStamp(new Dot("n1", 3), VersionVector.Parse("n1:3"), concurrent: true));
        var json = JsonSerializer.Serialize(wire, JsonDefaults.Web);
        Assert.Equal("""{"context":{"n1":3},"causal":{"dot":["n1",3],"ctx":{"n1":3},"concurrent":true}}""", json);
        var back = JsonSerializer.Deserialize<Wire>(json, JsonDefaults.Web)!;
        Assert.Equal(wire.Context, back.Context);
        Assert.Equal(wire.Causal, back.Causal);
        Assert.Null(JsonSerializer.Deserialize<Wire>("""{"context":null}""", JsonDefaults.Web)!.Context);
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<Wire>("""{"context":{"n1":"x"}}""", JsonDefaults.Web));
    }
}
