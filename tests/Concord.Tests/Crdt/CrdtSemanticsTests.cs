using System.Text.Json;
using Concord.Crdt;
using Microsoft.Extensions.Time.Testing;

namespace Concord.Tests.Crdt;

public sealed class CrdtSemanticsTests
{
    private static JsonElement J(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static T Apply<T>(T state, T delta) where T : CrdtState, ICrdt<T> => state.Merge(delta);

    [Fact]
    public void PNCounter_IncrementsAndDecrementsFromReplicas_SumUp()
    {
        var a = PNCounter.Empty;
        a = Apply(a, a.Increment("a", 5));
        a = Apply(a, a.Decrement("a", 2));
        var b = PNCounter.Empty;
        b = Apply(b, b.Add("b", 10));
        b = Apply(b, b.Add("b", -1));
        Assert.Equal(3, a.Value);
        Assert.Equal(12, a.Merge(b).Value);
        Assert.Equal(12, a.Merge(b).Merge(a).Merge(b).Value); // duplicates do not double count
    }

    [Fact]
    public void PNCounter_DeltaCarriesOnlyTheReplicasNewTotal()
    {
        var s = PNCounter.Empty;
        s = Apply(s, s.Increment("a", 5));
        s = Apply(s, s.Increment("b", 7));
        var delta = s.Increment("a", 1);
        Assert.Equal("""{"$crdt":"pncounter","state":{"p":{"a":6},"n":{}}}""", delta.ToJsonString());
    }

    [Fact]
    public void LwwRegister_LaterTimestampWins_TieBrokenByReplica()
    {
        var r = LwwRegister.Empty;
        var x = r.Set(J("1"), "a", 100);
        var y = r.Set(J("2"), "b", 200);
        Assert.Equal(2, x.Merge(y).Value.GetInt32());
        Assert.Equal(2, y.Merge(x).Value.GetInt32());
        var tieA = r.Set(J("\"a\""), "a", 300);
        var tieB = r.Set(J("\"b\""), "b", 300);
        Assert.Equal("b", tieA.Merge(tieB).Value.GetString());
        Assert.Equal("b", tieB.Merge(tieA).Value.GetString());
    }

    [Fact]
    public void LwwRegister_SetAfterReadingAFutureTimestamp_StillWins()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        // A replica with a clock one hour ahead wrote first; a reader with a correct clock overwrites it afterwards.
        var skewed = LwwRegister.Empty.Set(J("\"skewed\""), "fast", clock.GetUtcNow().AddHours(1).UtcTicks);
        var reader = LwwRegister.Empty.Merge(skewed);
        var later = reader.Set(J("\"later\""), "slow", clock);
        Assert.Equal("later", skewed.Merge(later).Value.GetString());
        Assert.True(later.Timestamp > skewed.Timestamp);
    }

    [Fact]
    public void MVRegister_ConcurrentAssignments_AreKept_UntilOneThatSawBothReplacesThem()
    {
        var a = MVRegister.Empty;
        var b = MVRegister.Empty;
        a = Apply(a, a.Assign("a", J("\"from a\"")));
        b = Apply(b, b.Assign("b", J("\"from b\"")));
        var both = a.Merge(b);
        Assert.Equal(["from a", "from b"], both.ValuesAs<string>());
        var resolved = Apply(both, both.Assign("c", J("\"merged\"")));
        Assert.Equal(["merged"], resolved.ValuesAs<string>());
        // A stale replica that only saw "from a" assigns concurrently with the resolution: both survive.
        var stale = Apply(a, a.Assign("a", J("\"late\"")));
        Assert.Equal(["late", "merged"], resolved.Merge(stale).ValuesAs<string>().Order());
    }

    [Fact]
    public void ORSet_AddConcurrentWithRemove_AddWins()
    {
        var a = ORSet.Empty;
        a = Apply(a, a.Add("a", "x"));
        var b = ORSet.Empty.Merge(a);
        var remove = b.Remove("x");             // b removes the x it observed…
        var addAgain = a.Add("a", "x");         // …while a adds x again, concurrently
        b = Apply(b, remove);
        a = Apply(a, addAgain);
        Assert.False(b.Contains("x"));
        Assert.True(a.Merge(b).Contains("x"));
        Assert.True(b.Merge(a).Contains("x"));
    }

    [Fact]
    public void ORSet_RemoveAfterObservingEveryAdd_Removes()
    {
        var a = ORSet.Empty;
        a = Apply(a, a.Add("a", "x"));
        var b = ORSet.Empty;
        b = Apply(b, b.Add("b", "x"));
        var c = a.Merge(b);
        c = Apply(c, c.Remove("x"));
        Assert.False(c.Merge(a).Merge(b).Contains("x"));
    }

    [Fact]
    public void ORSet_RemovedElements_LeaveNoTombstones()
    {
        var s = ORSet.Empty;
        for (var i = 0; i < 100; i++)
        {
            s = Apply(s, s.Add("a", i));
            s = Apply(s, s.Remove(i));
        }
        Assert.Equal(0, s.Count);
        // The causal context compacts to one counter per replica: nothing per removed element.
        Assert.Equal("""{"$crdt":"orset","state":{"entries":[],"ctx":{"vv":{"a":100},"dc":[]}}}""", s.ToJsonString());
    }

    [Fact]
    public void ORSet_Elements_CompareAsCanonicalJson()
    {
        var s = ORSet.Empty;
        s = Apply(s, s.Add("a", J("""{"b":1,"a":[1.0,"x"]}""")));
        Assert.True(s.Contains(J("""{"a":[1,"x"],"b":1.00}""")));
        s = Apply(s, s.Add("a", J("""{"a":[1,"x"],"b":1}""")));
        Assert.Equal(1, s.Count);
    }

    [Fact]
    public void ORMap_UpdateConcurrentWithRemove_UpdateWins()
    {
        var a = ORMap.Empty;
        a = Apply(a, a.Update<PNCounter>("a", "clicks", c => c.Increment("a", 3)));
        var b = ORMap.Empty.Merge(a);
        b = Apply(b, b.Remove("clicks"));
        a = Apply(a, a.Update<PNCounter>("a", "clicks", c => c.Increment("a", 1)));
        Assert.Null(b.Get<PNCounter>("clicks"));
        var merged = a.Merge(b);
        Assert.Equal(4, merged.Get<PNCounter>("clicks")!.Value);
        Assert.Equal(merged, b.Merge(a));
    }

    [Fact]
    public void ORMap_ConcurrentUpdatesOfOneField_MergeTheNestedStates()
    {
        var a = ORMap.Empty;
        var b = ORMap.Empty;
        a = Apply(a, a.Update<ORSet>("a", "tags", t => t.Add("a", "red")));
        b = Apply(b, b.Update<ORSet>("b", "tags", t => t.Add("b", "blue")));
        var merged = a.Merge(b);
        Assert.Equal(["blue", "red"], merged.Get<ORSet>("tags")!.ElementsAs<string>());
        // The next update supersedes both dots with one.
        var next = Apply(merged, merged.Update<ORSet>("a", "tags", t => t.Add("a", "green")));
        Assert.Single(JsonDocument.Parse(next.ToJsonString()).RootElement.GetProperty("state").GetProperty("entries").GetProperty("tags").GetProperty("orset").EnumerateArray());
        Assert.Equal(3, next.Get<ORSet>("tags")!.Count);
    }

    [Fact]
    public void ORMap_Nested_RoundTripsAndRendersPlainJson()
    {
        var m = ORMap.Empty;
        m = Apply(m, m.Update<ORMap>("a", "profile", p => p.Update<LwwRegister>("a", "name", n => n.Set(J("\"Ada\""), "a", 1))));
        m = Apply(m, m.Update<PNCounter>("a", "visits", c => c.Increment("a", 2)));
        m = Apply(m, m.Update<LwwRegister>("a", "visits", l => l.Set(J("\"many\""), "a", 1)));
        var back = CrdtState.Parse<ORMap>(m.ToJson());
        Assert.Equal(m, back);
        Assert.Equal("""{"profile":{"name":"Ada"},"visits#lww":"many","visits#pncounter":2}""", back.ToPlainJson().GetRawText());
        Assert.Equal("Ada", back.Get<ORMap>("profile")!.Get<LwwRegister>("name")!.ValueAs<string>());
    }

    [Fact]
    public void Encodings_AreStable()
    {
        // Golden: the stored form of each type. Changing any of these breaks data at rest and other clients.
        var c = PNCounter.Empty;
        c = Apply(c, c.Increment("b", 2));
        c = Apply(c, c.Decrement("a", 1));
        Assert.Equal("""{"$crdt":"pncounter","state":{"p":{"b":2},"n":{"a":1}}}""", c.ToJsonString());

        Assert.Equal("""{"$crdt":"lww","state":{}}""", LwwRegister.Empty.ToJsonString());
        Assert.Equal("""{"$crdt":"lww","state":{"ts":42,"replica":"a","value":{"x":1,"y":[2]}}}""",
            LwwRegister.Empty.Set(J("""{"y":[2],"x":1.0}"""), "a", 42).ToJsonString());

        var mv = MVRegister.Empty;
        mv = Apply(mv, mv.Assign("a", J("1")));
        Assert.Equal("""{"$crdt":"mvreg","state":{"entries":[{"dot":["a",1],"value":1}],"ctx":{"vv":{"a":1},"dc":[]}}}""", mv.ToJsonString());

        var set = ORSet.Empty;
        set = Apply(set, set.Add("b", "x"));
        set = set.Merge(ORSet.Empty.Add("a", "y")).Merge(CrdtState.Parse<ORSet>(J("""{"$crdt":"orset","state":{"entries":[],"ctx":{"vv":{},"dc":[["c",3]]}}}""")));
        Assert.Equal("""{"$crdt":"orset","state":{"entries":[{"element":"x","dots":[["b",1]]},{"element":"y","dots":[["a",1]]}],"ctx":{"vv":{"a":1,"b":1},"dc":[["c",3]]}}}""", set.ToJsonString());

        var map = ORMap.Empty;
        map = Apply(map, map.Update<PNCounter>("a", "n", x => x.Increment("a")));
        Assert.Equal("""{"$crdt":"ormap","state":{"entries":{"n":{"pncounter":[{"dot":["a",1],"state":{"p":{"a":1},"n":{}}}]}},"ctx":{"vv":{"a":1},"dc":[]}}}""", map.ToJsonString());
    }

    [Theory]
    [InlineData("""{"$crdt":"nope","state":{}}""")]
    [InlineData("""{"$crdt":"orset"}""")]
    [InlineData("""{"$crdt":"orset","state":{"entries":[{"element":1,"dots":[["a",0]]}]}}""")]
    [InlineData("""{"$crdt":"pncounter","state":{"p":{"a":-1}}}""")]
    [InlineData("""{"$crdt":"mvreg","state":{"entries":[{"dot":"a:1","value":1}]}}""")]
    [InlineData("""{"$crdt":"ormap","state":{"entries":{"x":{"weird":[]}}}}""")]
    [InlineData("""[1,2]""")]
    public void Parse_Malformed_ThrowsInvalidRequest(string json) =>
        Assert.Throws<InvalidRequestException>(() => CrdtState.Parse(J(json)));

    [Fact]
    public void ParseTyped_OtherType_ThrowsTypeMismatch()
    {
        var e = Assert.Throws<CrdtTypeMismatchException>(() => CrdtState.Parse<ORSet>(PNCounter.Empty.ToJson()));
        Assert.Equal("orset", e.Expected);
        Assert.Equal("pncounter", e.Actual);
        Assert.Throws<CrdtTypeMismatchException>(() => CrdtState.Parse<ORSet>(J("""{"plain":true}""")));
    }
}
