using System.Buffers;
using System.Text;
using Microsoft.AspNetCore.Connections;

namespace Concord.Server.Http;

/// <summary>
/// Caps open client connections (<see cref="ConcordServerOptions.MaxConnections"/>). Kestrel's own limit drops extra
/// connections without a word; this one reads the request head and answers 503 <c>too-many-connections</c> as
/// problem+json, so a client learns why, then closes the connection.
/// </summary>
internal sealed class ConnectionLimit(int max)
{
    private const int MaxHeadBytes = 16 * 1024;
    private static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(2);
    private int _open;

    /// <summary>Connections currently open (accepted and not yet closed), rejected ones included while they are answered.</summary>
    public int Open => Volatile.Read(ref _open);

    public ConnectionDelegate Middleware(ConnectionDelegate next) => async connection =>
    {
        try
        {
            if (Interlocked.Increment(ref _open) <= max) await next(connection).ConfigureAwait(false);
            else await RejectAsync(connection).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _open);
        }
    };

    private async Task RejectAsync(ConnectionContext connection)
    {
        // Read the request head first: closing a socket with unread data makes the client see a reset, not the answer.
        using (var timeout = new CancellationTokenSource(HeadTimeout))
        {
            try
            {
                while (true)
                {
                    var read = await connection.Transport.Input.ReadAsync(timeout.Token).ConfigureAwait(false);
                    var seen = read.Buffer.Length;
                    var complete = EndsHead(read.Buffer);
                    connection.Transport.Input.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                    if (complete || read.IsCompleted || seen >= MaxHeadBytes) break;
                }
            }
            catch (OperationCanceledException)
            {
                // A client that sends nothing still gets the answer.
            }
        }
        var body = $$"""{"type":"{{Problems.TypeBase}}too-many-connections","title":"Too many connections","status":503,"detail":"This server allows {{max}} open connections; retry later or reuse a connection"}""";
        var head = $"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";
        await connection.Transport.Output.WriteAsync(Encoding.UTF8.GetBytes(head + body)).ConfigureAwait(false);
        await connection.Transport.Output.CompleteAsync().ConfigureAwait(false);
    }

    private static bool EndsHead(ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        return reader.TryReadTo(out ReadOnlySequence<byte> _, "\r\n\r\n"u8);
    }
}
