using System.Numerics;

namespace Concord.Lab.Checkers.Linearizability;

/// <summary>A sequential specification: an initial state and a step function. Implemented by structs so the search is specialized per model.</summary>
internal interface ISequentialModel<TState>
    where TState : IEquatable<TState>
{
    TState Initial { get; }

    /// <summary>Applies <paramref name="op"/>; false when its observed result is impossible in <paramref name="state"/>.</summary>
    bool Step(TState state, LinOp op, out TState next);
}

/// <summary>Register and CAS register over interned values; value id 0 is <c>null</c>, the initial value.</summary>
internal readonly struct RegisterModel : ISequentialModel<long>
{
    public long Initial => 0;

    public bool Step(long state, LinOp op, out long next)
    {
        switch (op.Kind)
        {
            case LinKind.Write:
                next = op.A;
                return true;
            case LinKind.Read:
                next = state;
                return state == op.Output;
            case LinKind.Cas:
                if (state == op.A)
                {
                    next = op.B;
                    return true;
                }

                // A CAS of unknown outcome whose comparison fails here would simply have failed: a no-op.
                next = state;
                return !op.Known;
            default:
                next = state;
                return false;
        }
    }
}

internal readonly struct CounterModel : ISequentialModel<long>
{
    public long Initial => 0;

    public bool Step(long state, LinOp op, out long next)
    {
        switch (op.Kind)
        {
            case LinKind.Increment:
                next = unchecked(state + op.A);
                return true;
            case LinKind.Read:
                next = state;
                return state == op.Output;
            default:
                next = state;
                return false;
        }
    }
}

internal readonly struct SetModel(int elementCount) : ISequentialModel<SetState>
{
    public SetState Initial => SetState.Empty(elementCount);

    public bool Step(SetState state, LinOp op, out SetState next)
    {
        switch (op.Kind)
        {
            case LinKind.Add:
                next = state.With((int)op.A);
                return true;
            case LinKind.Read:
                next = state;
                return state.Equals(op.Observed);
            default:
                next = state;
                return false;
        }
    }
}

internal readonly struct QueueModel : ISequentialModel<QueueState>
{
    public QueueState Initial => QueueState.Empty;

    public bool Step(QueueState state, LinOp op, out QueueState next)
    {
        switch (op.Kind)
        {
            case LinKind.Enqueue:
                next = state.Enqueue((int)op.A);
                return true;
            case LinKind.Dequeue when !op.Known:
                next = state.Count == 0 ? state : state.Dequeue();
                return true;
            case LinKind.Dequeue when op.Output == LinOp.EmptyQueue:
                next = state;
                return state.Count == 0;
            case LinKind.Dequeue:
                if (state.Count > 0 && state.Head == op.Output)
                {
                    next = state.Dequeue();
                    return true;
                }

                next = state;
                return false;
            default:
                next = state;
                return false;
        }
    }
}

/// <summary>An immutable set of interned elements (a bitset of fixed width per key).</summary>
internal sealed class SetState : IEquatable<SetState>
{
    private readonly ulong[] _words;
    private readonly int _hash;

    private SetState(ulong[] words)
    {
        _words = words;
        var hash = new HashCode();
        foreach (var word in words)
        {
            hash.Add(word);
        }

        _hash = hash.ToHashCode();
    }

    public static SetState Empty(int elementCount) => new(new ulong[(elementCount + 63) / 64]);

    public static SetState Of(int elementCount, IEnumerable<int> elements)
    {
        var words = new ulong[(elementCount + 63) / 64];
        foreach (var element in elements)
        {
            words[element >> 6] |= 1UL << element;
        }

        return new SetState(words);
    }

    public int Count => _words.Sum(BitOperations.PopCount);

    public bool Contains(int element) => (_words[element >> 6] & (1UL << element)) != 0;

    public SetState With(int element)
    {
        if (Contains(element))
        {
            return this;
        }

        var words = (ulong[])_words.Clone();
        words[element >> 6] |= 1UL << element;
        return new SetState(words);
    }

    public IEnumerable<int> Elements()
    {
        for (var i = 0; i < _words.Length * 64; i++)
        {
            if (Contains(i))
            {
                yield return i;
            }
        }
    }

    public bool Equals(SetState? other) =>
        other is not null && (ReferenceEquals(this, other) || (_hash == other._hash && _words.AsSpan().SequenceEqual(other._words)));

    public override bool Equals(object? obj) => Equals(obj as SetState);

    public override int GetHashCode() => _hash;
}

/// <summary>An immutable FIFO queue of interned elements.</summary>
internal sealed class QueueState : IEquatable<QueueState>
{
    private readonly int[] _items;
    private readonly int _hash;

    private QueueState(int[] items)
    {
        _items = items;
        var hash = new HashCode();
        foreach (var item in items)
        {
            hash.Add(item);
        }

        _hash = hash.ToHashCode();
    }

    public static QueueState Empty { get; } = new([]);

    public int Count => _items.Length;

    public int Head => _items[0];

    public QueueState Enqueue(int element)
    {
        var items = new int[_items.Length + 1];
        _items.CopyTo(items, 0);
        items[^1] = element;
        return new QueueState(items);
    }

    public QueueState Dequeue() => new(_items[1..]);

    public bool Equals(QueueState? other) =>
        other is not null && (ReferenceEquals(this, other) || (_hash == other._hash && _items.AsSpan().SequenceEqual(other._items)));

    public override bool Equals(object? obj) => Equals(obj as QueueState);

    public override int GetHashCode() => _hash;
}
