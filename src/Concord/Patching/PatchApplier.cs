using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Concord.Patching;

/// <summary>
/// Applies a <see cref="JsonPatch"/>: RFC 6902 operations addressed by RFC 6901 pointers, plus
/// Concord's atomic field operations. Stateless and thread-safe; the document it is given is not.
/// </summary>
/// <remarks>
/// Extension operations create missing parent objects (never arrays) and treat a null root as absent.
/// <c>increment</c> computes in 64-bit integers when both numbers are integral and fit a long, and
/// throws on overflow rather than silently losing precision in a double; otherwise it computes in doubles.
/// </remarks>
internal static class PatchApplier
{
    /// <summary>
    /// Applies <paramref name="patch"/> to <paramref name="document"/>, which the caller gives up (it is mutated).
    /// A null document is JSON null, or an absent root for the extension operations.
    /// </summary>
    /// <returns>The new root. When a <c>test</c> fails, the partially patched document, to be discarded.</returns>
    /// <exception cref="InvalidPatchException">Any failure other than a failed <c>test</c>.</exception>
    public static JsonNode? Apply(JsonNode? document, JsonPatch patch, out int failedTestIndex)
    {
        ArgumentNullException.ThrowIfNull(patch);
        var root = document;
        var operations = patch.Operations;
        for (var i = 0; i < operations.Count; i++)
        {
            var step = new Step(operations[i], i);
            if (!step.Apply(ref root))
            {
                failedTestIndex = i;
                return root;
            }
        }

        failedTestIndex = -1;
        return root;
    }

    /// <summary>One operation being applied; carries what error messages need.</summary>
    private readonly struct Step(PatchOperation operation, int index)
    {
        private readonly PatchOperation _operation = operation;
        private readonly int _index = index;

        private PatchOp Op => _operation.Op;

        /// <summary>Applies the operation; false when it is a <c>test</c> that failed.</summary>
        public bool Apply(ref JsonNode? root)
        {
            var path = ParsePointer(_operation.Path);
            switch (Op)
            {
                case PatchOp.Add:
                    root = Add(root, path, _operation.Value?.DeepClone());
                    return true;
                case PatchOp.Remove:
                    Remove(root, path);
                    return true;
                case PatchOp.Replace:
                    root = Replace(root, path, _operation.Value?.DeepClone());
                    return true;
                case PatchOp.Move:
                    root = Move(root, ParsePointer(_operation.From), path);
                    return true;
                case PatchOp.Copy:
                    root = Add(root, path, Require(root, ParsePointer(_operation.From))?.DeepClone());
                    return true;
                case PatchOp.Test:
                    return Test(root, path);
                default:
                    root = Atomic(root, path);
                    return true;
            }
        }

        // ---- RFC 6902 -------------------------------------------------------------------------

        private JsonNode? Add(JsonNode? root, string[] path, JsonNode? value)
        {
            if (path.Length == 0) return value;
            var parent = Parent(root, path, MissingParent.Fail)!;
            if (parent is JsonObject obj)
            {
                obj[path[^1]] = value;
                return root;
            }

            var array = (JsonArray)parent;
            var at = Index(array, path, path.Length - 1);
            if (at > array.Count) throw Fail($"'{Prefix(path, path.Length)}' is past the end: the array has {array.Count} element(s)");
            array.Insert(at, value);
            return root;
        }

        /// <summary>Removes and returns the value at <paramref name="path"/>, detached from its parent.</summary>
        private JsonNode? Remove(JsonNode? root, string[] path)
        {
            if (path.Length == 0) throw Fail("cannot remove the whole document");
            var parent = Parent(root, path, MissingParent.Fail)!;
            var token = path[^1];
            if (parent is JsonObject obj)
            {
                if (!obj.TryGetPropertyValue(token, out var removed)) throw Fail($"'{Prefix(path, path.Length)}' does not exist");
                obj.Remove(token);
                return removed;
            }

            var array = (JsonArray)parent;
            var at = ExistingIndex(array, path, path.Length - 1);
            var element = array[at];
            array.RemoveAt(at);
            return element;
        }

        private JsonNode? Replace(JsonNode? root, string[] path, JsonNode? value)
        {
            if (path.Length == 0) return value;
            var parent = Parent(root, path, MissingParent.Fail)!;
            if (parent is JsonObject obj)
            {
                if (!obj.ContainsKey(path[^1])) throw Fail($"'{Prefix(path, path.Length)}' does not exist");
                obj[path[^1]] = value;
            }
            else
            {
                var array = (JsonArray)parent;
                array[ExistingIndex(array, path, path.Length - 1)] = value;
            }

            return root;
        }

        private JsonNode? Move(JsonNode? root, string[] from, string[] path)
        {
            if (from.AsSpan().SequenceEqual(path))
            {
                _ = Require(root, from); // a no-op, but the source must still exist
                return root;
            }

            if (path.Length > from.Length && path.AsSpan(0, from.Length).SequenceEqual(from))
                throw Fail($"cannot move '{Prefix(from, from.Length)}' into its own child '{Prefix(path, path.Length)}'");

            // RFC 6902 defines move as remove-then-add, so array indices in the target see the removal.
            var value = Remove(root, from);
            return Add(root, path, value);
        }

        private bool Test(JsonNode? root, string[] path)
        {
            JsonNode? actual;
            if (path.Length == 0)
            {
                actual = root;
            }
            else
            {
                // A missing parent is a bad patch; a missing leaf is merely a value that does not match.
                var parent = Parent(root, path, MissingParent.Fail)!;
                if (!TryGet(parent, path, out actual)) return false;
            }

            return JsonNode.DeepEquals(actual, _operation.Value);
        }

        /// <summary>The value at <paramref name="path"/> (a move or copy source), which must exist.</summary>
        private JsonNode? Require(JsonNode? root, string[] path)
        {
            if (path.Length == 0) return root;
            var parent = Parent(root, path, MissingParent.Fail)!;
            if (parent is JsonArray array) return array[ExistingIndex(array, path, path.Length - 1)];
            if (!((JsonObject)parent).TryGetPropertyValue(path[^1], out var value))
                throw Fail($"'{Prefix(path, path.Length)}' does not exist");
            return value;
        }

        // ---- Concord's atomic operations ------------------------------------------------------

        private JsonNode? Atomic(JsonNode? root, string[] path)
        {
            // removeFromSet on a missing target is a no-op, so it must not create parents either.
            var isRemove = Op == PatchOp.RemoveFromSet;
            if (path.Length == 0)
            {
                if (root is null && isRemove) return root;
                return Combine(root, exists: root is not null, path);
            }

            if (root is null)
            {
                if (isRemove) return root;
                root = new JsonObject();
            }

            var parent = Parent(root, path, isRemove ? MissingParent.Skip : MissingParent.Create);
            if (parent is null) return root;

            var obj = parent as JsonObject;
            var array = parent as JsonArray;
            JsonNode? current;
            bool exists;
            var at = -1;
            if (obj is not null)
            {
                exists = obj.TryGetPropertyValue(path[^1], out current);
            }
            else
            {
                // Arrays are never extended by position: the element must exist.
                at = ExistingIndex(array!, path, path.Length - 1);
                current = array![at];
                exists = true;
            }

            if (!exists && isRemove) return root;
            var updated = Combine(current, exists, path);
            if (!exists || !ReferenceEquals(updated, current))
            {
                if (obj is not null) obj[path[^1]] = updated;
                else array![at] = updated;
            }

            return root;
        }

        /// <summary>The target's new value: <paramref name="current"/> itself when updated in place or unchanged.</summary>
        private JsonNode? Combine(JsonNode? current, bool exists, string[] path)
        {
            var operand = _operation.Value;
            switch (Op)
            {
                case PatchOp.Increment:
                {
                    var by = operand is null ? Number.One : ReadNumber(operand, targetPath: null);
                    if (!exists) return by.ToNode();
                    return Sum(ReadNumber(current, path), by).ToNode();
                }
                case PatchOp.Append:
                case PatchOp.AddToSet:
                {
                    if (!exists) return new JsonArray(operand?.DeepClone());
                    var array = ExpectArray(current, path);
                    if (Op == PatchOp.Append || !Contains(array, operand)) array.Add(operand?.DeepClone());
                    return array;
                }
                case PatchOp.RemoveFromSet:
                {
                    var array = ExpectArray(current, path);
                    array.RemoveAll(element => JsonNode.DeepEquals(element, operand));
                    return array;
                }
                case PatchOp.Max:
                case PatchOp.Min:
                    return Extreme(current, exists, operand, path);
                default:
                    throw Fail($"unsupported operation '{Op}'");
            }
        }

        private JsonNode? Extreme(JsonNode? current, bool exists, JsonNode? operand, string[] path)
        {
            var kind = KindOf(operand);
            if (kind is not (JsonValueKind.Number or JsonValueKind.String))
                throw Fail($"the operand is {Describe(operand)}; {JsonPatch.OpName(Op)} takes a number or a string");
            if (!exists) return operand!.DeepClone();
            if (KindOf(current) != kind)
                throw Fail($"cannot compare {Describe(current)} at {Display(path)} with {Describe(operand)} operand");

            var order = kind == JsonValueKind.Number
                ? Number.Compare(ReadNumber(operand, targetPath: null), ReadNumber(current, path))
                : string.CompareOrdinal(ReadString(operand!), ReadString(current!));
            var operandWins = Op == PatchOp.Max ? order > 0 : order < 0;
            return operandWins ? operand!.DeepClone() : current;
        }

        private Number Sum(Number a, Number b)
        {
            if (a.IsInteger && b.IsInteger)
            {
                var sum = unchecked(a.Integer + b.Integer);
                // Overflow iff both addends share a sign the sum does not. An error, because a counter
                // that silently degrades to a double would lose precision without anyone noticing.
                if (((a.Integer ^ sum) & (b.Integer ^ sum)) < 0)
                    throw Fail($"incrementing {a.Integer} by {b.Integer} overflows a 64-bit integer");
                return Number.FromInteger(sum);
            }

            var result = a.AsDouble + b.AsDouble;
            if (!double.IsFinite(result)) throw Fail($"incrementing {a.AsDouble} by {b.AsDouble} overflows a double");
            return Number.FromDouble(result);
        }

        private JsonArray ExpectArray(JsonNode? node, string[] path) =>
            node as JsonArray ?? throw Fail($"{Display(path)} is {Describe(node)}, not an array");

        private static bool Contains(JsonArray array, JsonNode? value)
        {
            foreach (var element in array)
            {
                if (JsonNode.DeepEquals(element, value)) return true;
            }

            return false;
        }

        // ---- Pointers -------------------------------------------------------------------------

        /// <summary>Splits an RFC 6901 pointer into unescaped reference tokens ("" has none).</summary>
        private string[] ParsePointer(string? pointer)
        {
            if (pointer is null) throw Fail($"'{JsonPatch.OpName(Op)}' needs 'from'");
            if (pointer.Length == 0) return [];
            if (pointer[0] != '/') throw Fail($"'{pointer}' is not a JSON Pointer: it must be empty or start with '/'");

            var tokens = new string[pointer.AsSpan().Count('/')];
            var start = 1;
            for (var t = 0; t < tokens.Length; t++)
            {
                var end = pointer.IndexOf('/', start);
                if (end < 0) end = pointer.Length;
                tokens[t] = Unescape(pointer, start, end);
                start = end + 1;
            }

            return tokens;
        }

        private string Unescape(string pointer, int start, int end)
        {
            var tilde = pointer.IndexOf('~', start, end - start);
            if (tilde < 0) return pointer[start..end];

            var builder = new StringBuilder(end - start).Append(pointer, start, tilde - start);
            for (var i = tilde; i < end; i++)
            {
                if (pointer[i] != '~')
                {
                    builder.Append(pointer[i]);
                    continue;
                }

                // RFC 6901: only ~0 and ~1 are escapes; any other use of '~' is malformed.
                var next = i + 1 < end ? pointer[i + 1] : '\0';
                if (next is not ('0' or '1')) throw Fail($"'{pointer}' is not a JSON Pointer: '~' must be followed by '0' or '1'");
                builder.Append(next == '0' ? '~' : '/');
                i++;
            }

            return builder.ToString();
        }

        /// <summary>
        /// The container holding the last token of <paramref name="path"/> (which is not empty), or null
        /// when a parent is missing and <paramref name="mode"/> is <see cref="MissingParent.Skip"/>.
        /// </summary>
        private JsonNode? Parent(JsonNode? root, string[] path, MissingParent mode)
        {
            var current = root;
            for (var depth = 0; depth < path.Length - 1; depth++)
            {
                switch (current)
                {
                    case JsonObject obj:
                        if (!obj.TryGetPropertyValue(path[depth], out var child))
                        {
                            if (mode == MissingParent.Skip) return null;
                            if (mode == MissingParent.Fail) throw Fail($"'{Prefix(path, depth + 1)}' does not exist");
                            child = new JsonObject();
                            obj[path[depth]] = child;
                        }

                        current = child;
                        break;
                    case JsonArray array:
                        current = array[ExistingIndex(array, path, depth)];
                        break;
                    default:
                        throw Fail($"{Display(path, depth)} is {Describe(current)}, not an object or array");
                }
            }

            return current is JsonObject or JsonArray
                ? current
                : throw Fail($"{Display(path, path.Length - 1)} is {Describe(current)}, not an object or array");
        }

        private bool TryGet(JsonNode parent, string[] path, out JsonNode? value)
        {
            if (parent is JsonObject obj) return obj.TryGetPropertyValue(path[^1], out value);
            var array = (JsonArray)parent;
            var at = Index(array, path, path.Length - 1);
            value = at < array.Count ? array[at] : null;
            return at < array.Count;
        }

        /// <summary>Parses an array index token; "-" (one past the end) is <see cref="JsonArray.Count"/>.</summary>
        private int Index(JsonArray array, string[] path, int depth)
        {
            var token = path[depth];
            if (token == "-") return array.Count;
            // RFC 6901: "0" or digits without a leading zero.
            if (token.Length == 0 || (token[0] == '0' && token.Length > 1) || token.AsSpan().ContainsAnyExceptInRange('0', '9'))
                throw Fail($"'{Prefix(path, depth + 1)}': '{token}' is not an array index");
            // Well-formed but beyond int: past the end of any array.
            return int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var at) ? at : int.MaxValue;
        }

        private int ExistingIndex(JsonArray array, string[] path, int depth)
        {
            var at = Index(array, path, depth);
            return at < array.Count
                ? at
                : throw Fail($"'{Prefix(path, depth + 1)}' does not exist: the array has {array.Count} element(s)");
        }

        // ---- Numbers and messages -------------------------------------------------------------

        /// <summary>Reads the number at <paramref name="targetPath"/>, or the operand when that is null.</summary>
        private Number ReadNumber(JsonNode? node, string[]? targetPath)
        {
            if (node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && Number.TryRead(value, out var number))
                return number;
            var what = targetPath is null ? "the operand" : Display(targetPath);
            throw Fail(KindOf(node) == JsonValueKind.Number
                ? $"{what} is a number outside the range of a double"
                : $"{what} is {Describe(node)}, not a number");
        }

        private static string ReadString(JsonNode node)
        {
            if (node.AsValue().TryGetValue(out string? s)) return s;
            // A CLR value that serializes as a string (Guid, DateTime, ...): compare its JSON text's value.
            using var document = JsonDocument.Parse(node.ToJsonString());
            return document.RootElement.GetString()!;
        }

        private InvalidPatchException Fail(string reason)
        {
            var name = JsonPatch.OpName(Op);
            var where = _operation.From is { } from && Op is PatchOp.Move or PatchOp.Copy
                ? $"{name} from '{from}' to '{_operation.Path}'"
                : $"{name} '{_operation.Path}'";
            return new InvalidPatchException($"{where}: {reason}", _index);
        }
    }

    private enum MissingParent
    {
        Fail,
        Create,
        Skip,
    }

    /// <summary>Names a pointer prefix in a message; the empty pointer is the document root.</summary>
    private static string Display(string[] path, int count = -1)
    {
        var prefix = Prefix(path, count < 0 ? path.Length : count);
        return prefix.Length == 0 ? "the document root" : $"'{prefix}'";
    }

    /// <summary>The pointer made of the first <paramref name="count"/> tokens, re-escaped (error paths only).</summary>
    private static string Prefix(string[] path, int count)
    {
        var builder = new StringBuilder();
        for (var i = 0; i < count; i++)
            builder.Append('/').Append(path[i].Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal));
        return builder.ToString();
    }

    private static JsonValueKind KindOf(JsonNode? node) => node?.GetValueKind() ?? JsonValueKind.Null;

    private static string Describe(JsonNode? node) => KindOf(node) switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    /// <summary>
    /// A JSON number as a long when its value is integral and fits one (whatever its spelling: 5, 5.0, 5e0),
    /// otherwise as a finite double. Classifying by value keeps results independent of how a number was written.
    /// </summary>
    private readonly struct Number
    {
        private Number(long integer, double real, bool isInteger)
        {
            Integer = integer;
            Real = real;
            IsInteger = isInteger;
        }

        /// <summary>2^63, exactly: doubles in [-2^63, 2^63) convert to long without overflow.</summary>
        private const double LongRangeEnd = 9223372036854775808.0;

        public static Number One => FromInteger(1);

        public long Integer { get; }

        private double Real { get; }

        public bool IsInteger { get; }

        public double AsDouble => IsInteger ? Integer : Real;

        public static Number FromInteger(long value) => new(value, 0, isInteger: true);

        public static Number FromDouble(double value) =>
            Math.Floor(value) == value && value >= -LongRangeEnd && value < LongRangeEnd
                ? FromInteger((long)value)
                : new(0, value, isInteger: false);

        public JsonNode ToNode() => IsInteger ? JsonValue.Create(Integer) : JsonValue.Create(Real);

        public static int Compare(Number a, Number b)
        {
            if (a.IsInteger && b.IsInteger) return a.Integer.CompareTo(b.Integer);
            if (a.IsInteger) return -Compare(b, a);
            // a is a double: a non-integer (so below 2^52, where rounding b cannot reorder the pair) or
            // outside the long range. Only a = 2^63 needs care: long.MaxValue rounds up to equal it.
            if (b.IsInteger && a.Real >= LongRangeEnd) return 1;
            return a.Real.CompareTo(b.AsDouble);
        }

        public static bool TryRead(JsonValue value, out Number number)
        {
            // Parsed documents hold JsonElements; values built in code hold CLR primitives.
            if (value.TryGetValue(out JsonElement element)) return TryRead(element, out number);
            if (value.TryGetValue(out long l)) { number = FromInteger(l); return true; }
            if (value.TryGetValue(out int i)) { number = FromInteger(i); return true; }
            if (value.TryGetValue(out double d)) return TryFromDouble(d, out number);

            // Rarer CLR numeric types (byte, float, ulong, ...): read them through their JSON text.
            using var document = JsonDocument.Parse(value.ToJsonString());
            return TryRead(document.RootElement, out number);
        }

        private static bool TryRead(JsonElement element, out Number number)
        {
            if (element.TryGetInt64(out var l)) { number = FromInteger(l); return true; }
            // Decimal before double: 9007199254740993.0 is integral and must not round through a double.
            if (element.TryGetDecimal(out var m) && decimal.Truncate(m) == m && m >= long.MinValue && m <= long.MaxValue)
            {
                number = FromInteger((long)m);
                return true;
            }

            if (element.TryGetDouble(out var d)) return TryFromDouble(d, out number);
            number = default;
            return false;
        }

        private static bool TryFromDouble(double d, out Number number)
        {
            number = FromDouble(d);
            return double.IsFinite(d);
        }
    }
}
