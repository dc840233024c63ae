using System.Buffers;
using System.Buffers.Binary;
using Concord.Internal;

namespace Concord.Engine;

/// <summary>
/// Record framing shared by log segments and snapshots: <c>[u32 length][u32 crc32c(payload)][payload]</c>,
/// little-endian, after an 8-byte file magic.
/// </summary>
internal static class Framing
{
    public const int HeaderSize = 8;
    public const int MaxPayload = 512 * 1024 * 1024;
    public static ReadOnlySpan<byte> LogMagic => "CNCDLOG1"u8;
    public static ReadOnlySpan<byte> SnapshotMagic => "CNCDSNP1"u8;

    public static void WriteFrame(Stream stream, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Crc32C.Compute(payload));
        stream.Write(header);
        stream.Write(payload);
    }

    public static void WriteFrame(ArrayBufferWriter<byte> output, ReadOnlySpan<byte> payload)
    {
        var header = output.GetSpan(HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Crc32C.Compute(payload));
        output.Advance(HeaderSize);
        output.Write(payload);
    }

    /// <summary>Outcome of reading one frame.</summary>
    public enum ReadStatus { Ok, End, Torn }

    /// <summary>
    /// Reads the frame at <paramref name="offset"/>. <see cref="ReadStatus.Torn"/> means the bytes there are not a
    /// complete, valid frame (short header, impossible length, short payload or bad checksum).
    /// </summary>
    public static ReadStatus TryRead(ReadOnlyMemory<byte> file, long offset, out ReadOnlyMemory<byte> payload, out long next, out string reason)
    {
        payload = default;
        next = offset;
        reason = "";
        var remaining = file.Length - offset;
        if (remaining == 0) return ReadStatus.End;
        if (remaining < HeaderSize) { reason = "truncated frame header"; return ReadStatus.Torn; }
        var span = file.Span[(int)offset..];
        var length = BinaryPrimitives.ReadUInt32LittleEndian(span);
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(span[4..]);
        if (length == 0 || length > MaxPayload) { reason = $"impossible frame length {length}"; return ReadStatus.Torn; }
        if (remaining - HeaderSize < length) { reason = "truncated frame payload"; return ReadStatus.Torn; }
        payload = file.Slice((int)offset + HeaderSize, (int)length);
        if (Crc32C.Compute(payload.Span) != crc) { reason = "checksum mismatch"; return ReadStatus.Torn; }
        next = offset + HeaderSize + length;
        return ReadStatus.Ok;
    }
}
