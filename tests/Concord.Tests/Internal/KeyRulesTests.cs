using Concord.Internal;

namespace Concord.Tests.Internal;

public sealed class KeyRulesTests
{
    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("a/.")]
    [InlineData("a/../b")]
    [InlineData("./b")]
    public void ValidateKey_DotSegment_Throws(string key) =>
        Assert.Throws<InvalidKeyException>(() => KeyRules.ValidateKey(key));

    [Theory]
    [InlineData("a/.b")]
    [InlineData("a/..c/d")]
    [InlineData("...")]
    [InlineData("a.b/c.d")]
    [InlineData("item/0001")]
    public void ValidateKey_DotsInsideSegments_Accepted(string key) => KeyRules.ValidateKey(key);
}
