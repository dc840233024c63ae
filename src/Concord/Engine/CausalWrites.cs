using Concord.Crdt;

namespace Concord.Engine;

/// <summary>
/// Causal stamping of writes (docs/causality.md): every version gets a dot from this store's replica id and the key's
/// causal context; writes on sibling keys keep what their writer had not seen. Called by the engine's apply loop
/// under the write lock, after the operation produced its record.
/// </summary>
internal static class CausalWrites
{
    /// <summary>True when a put or delete of this key cannot lose data it did not see, so strict mode need not refuse it.</summary>
    public static bool KeepsSiblings(TxnOp op, ConcordRecord? live) => op.AllowSiblings || live?.Causal?.SiblingMode == true;

    /// <summary>
    /// Returns <paramref name="written"/> with its causal stamp; on a sibling key the value may become a
    /// <c>$siblings</c> envelope, and a delete may leave the unseen siblings instead of a tombstone.
    /// </summary>
    /// <param name="op">The operation.</param>
    /// <param name="latest">The key's newest version before the op, tombstones included (staged versions of the same transaction included).</param>
    /// <param name="live">The key's live version (null when absent, deleted or expired).</param>
    /// <param name="written">The record the op produced.</param>
    /// <param name="options">Engine options (replica id, value size limit).</param>
    public static ConcordRecord Stamp(TxnOp op, ConcordRecord? latest, ConcordRecord? live, ConcordRecord written, ConcordEngineOptions options)
    {
        var actor = options.ReplicaId;
        var dot = new Dot(actor, written.Revision);
        var previous = latest?.Causal;
        // Versions written before causal stamps existed count as one event of this store at their revision.
        var context = (previous?.Context ?? (latest is null ? VersionVector.Empty : VersionVector.Of(new Dot(actor, latest.Revision)))).With(dot);
        var siblingMode = op.AllowSiblings || previous?.SiblingMode == true;
        var value = written.Value;
        var deleted = written.IsDeleted;
        var valueDot = dot;
        var expires = written.ExpiresAt;
        var concurrent = false;

        switch (op.Kind)
        {
            case TxnOpKind.Patch:
                CrdtMerge.RefusePatch(op.Key, live);
                if (live is not null && SiblingEnvelope.IsEnvelope(live.Value))
                    throw new InvalidRequestException($"'{op.Key}' holds concurrent siblings: resolve them with a put carrying the merged context before patching");
                break;
            case TxnOpKind.Put or TxnOpKind.Delete:
                if (op.Kind == TxnOpKind.Put)
                {
                    if (SiblingEnvelope.IsEnvelope(value)) throw new InvalidRequestException($"'{SiblingEnvelope.Property}' is reserved for the siblings of a key (put to '{op.Key}')");
                    CrdtMerge.ValidatePut(value);
                }
                if (!siblingMode)
                {
                    // Hot path (most keys): no sibling envelope can exist, so only the live value's dot matters.
                    concurrent = live is not null && !Seen(live.Causal?.Dot ?? new Dot(actor, live.Revision));
                    break;
                }
                var unseen = live is null ? [] : SiblingsOf(live, actor).Where(s => !Seen(s.Dot)).ToList();
                concurrent = unseen.Count > 0;
                if (unseen.Count == 0) break;
                if (op.Kind == TxnOpKind.Put) unseen.Add(new Sibling(dot, written.Writer, written.Value));
                deleted = false;
                expires = op.Kind == TxnOpKind.Put ? written.ExpiresAt : live!.ExpiresAt;
                if (unseen.Count == 1)
                {
                    value = unseen[0].Value;
                    valueDot = unseen[0].Dot; // the surviving value keeps the identity of the write that produced it
                }
                else
                {
                    value = SiblingEnvelope.Write(unseen);
                    var size = System.Text.Encoding.UTF8.GetByteCount(value.GetRawText());
                    if (size > options.MaxValueBytes) throw new ValueTooLargeException(op.Key, size, options.MaxValueBytes);
                }
                break;
        }

        return new ConcordRecord(written.Key, value, written.Version, written.Revision, written.CreateRevision, written.Writer, written.CommittedAt, expires, deleted)
        {
            Causal = new CausalStamp(valueDot, context, concurrent, siblingMode),
        };

        // The writer saw a version if it stated that exact version, carried a context covering it, or wrote it earlier in this transaction.
        bool Seen(Dot d) => op.Expect.Kind == ExpectationKind.Version || (op.Context?.Covers(d) ?? false) || d == dot;
    }

    private static List<Sibling> SiblingsOf(ConcordRecord live, string actor) =>
        SiblingEnvelope.IsEnvelope(live.Value)
            ? SiblingEnvelope.Read(live.Value)
            : [new Sibling(live.Causal?.Dot ?? new Dot(actor, live.Revision), live.Writer, live.Value)];
}
