using System.Net;
using System.Net.Sockets;

namespace Concord.Faults;

/// <summary>
/// A loopback TCP proxy the nemesis controls: it adds latency to every chunk forwarded, can sever every open connection,
/// and can refuse new ones for a while (which, between <c>concord serve</c> and PostgreSQL/Redis, looks to the server
/// exactly like the database restarting).
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(TcpClient A, TcpClient B)> _open = [];
    private readonly Lock _gate = new();
    private readonly Task _accepting;
    private int _targetPort;
    private long _delayTicks;
    private volatile bool _refusing;

    public TcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    public int Port { get; }

    /// <summary>Where new connections go (a restarted server may listen elsewhere).</summary>
    public int TargetPort { get => Volatile.Read(ref _targetPort); set => Volatile.Write(ref _targetPort, value); }

    /// <summary>Delay added before forwarding each chunk, in both directions.</summary>
    public TimeSpan Delay { get => TimeSpan.FromTicks(Interlocked.Read(ref _delayTicks)); set => Interlocked.Exchange(ref _delayTicks, value.Ticks); }

    /// <summary>While true, new connections are closed at once.</summary>
    public bool Refusing { get => _refusing; set => _refusing = value; }

    /// <summary>Closes every open connection (both sides).</summary>
    public int SeverAll()
    {
        List<(TcpClient A, TcpClient B)> open;
        lock (_gate)
        {
            open = [.. _open];
            _open.Clear();
        }
        foreach (var (a, b) in open)
        {
            a.Dispose();
            b.Dispose();
        }
        return open.Count;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            _ = Task.Run(() => ServeAsync(inbound));
        }
    }

    private async Task ServeAsync(TcpClient inbound)
    {
        if (_refusing)
        {
            inbound.Dispose();
            return;
        }
        var outbound = new TcpClient();
        try
        {
            await outbound.ConnectAsync(IPAddress.Loopback, TargetPort, _stop.Token);
        }
        catch (Exception)
        {
            inbound.Dispose();
            outbound.Dispose();
            return;
        }
        inbound.NoDelay = outbound.NoDelay = true;
        lock (_gate) _open.Add((inbound, outbound));
        var a = PumpAsync(inbound, outbound);
        var b = PumpAsync(outbound, inbound);
        await Task.WhenAny(a, b);
        inbound.Dispose();
        outbound.Dispose();
        lock (_gate) _open.Remove((inbound, outbound));
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            var source = from.GetStream();
            var sink = to.GetStream();
            int read;
            while ((read = await source.ReadAsync(buffer, _stop.Token)) > 0)
            {
                var delay = Delay;
                if (delay > TimeSpan.Zero) await Task.Delay(delay, _stop.Token);
                await sink.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception)
        {
            // A severed or closed connection ends the pump; the caller closes both sides.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        SeverAll();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
