using System.CommandLine;
using Concord.Server;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;

namespace Concord.Cli.Commands;

/// <summary><c>concord serve</c>: the HTTP API over the chosen backend.</summary>
internal static class ServeCommand
{
    public const string DefaultUrl = "http://127.0.0.1:7400";

    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = "Data directory of the embedded engine (default: ./concord-data)" };
        var urls = new Option<string?>("--urls") { Description = $"Addresses to listen on, ';'-separated (default: {DefaultUrl}, or the urls / ASPNETCORE_URLS setting)" };
        var backend = new Option<string?>("--backend") { Description = "memory | embedded | postgres | redis (default: embedded)" };
        backend.AcceptOnlyFromAmong("memory", "embedded", "postgres", "redis");
        var connection = new Option<string?>("--connection") { Description = "Connection string for postgres or redis backends" };
        var config = new Option<string?>("--config") { Description = "JSON configuration file (section \"Concord\"); environment variables like Concord__Strict=false also apply" };
        var noStrict = new Option<bool>("--no-strict") { Description = "Allow blind overwrites of existing keys (strict mode is on by default)" };
        var logFormat = new Option<string?>("--log-format") { Description = "Console log format: simple | json (default: simple)" };
        logFormat.AcceptOnlyFromAmong("simple", "json");
        var command = new Command("serve", "Serve the Concord HTTP API (/v1), watch (SSE), locks, health and OpenAPI.")
        {
            data, urls, backend, connection, config, noStrict, logFormat,
        };
        command.SetAction(async (parse, ct) =>
        {
            var args = new List<string>();
            if (parse.GetValue(urls) is { } u) args.AddRange(["--urls", u]);
            if (parse.GetValue(config) is { } file) args.AddRange(["--config", file]);
            try
            {
                var app = await ConcordServer.CreateAsync([.. args], o =>
                {
                    if (parse.GetValue(data) is { } d) o.DataDirectory = d;
                    if (parse.GetValue(backend) is { } b) o.Backend = b;
                    if (parse.GetValue(connection) is { } c) o.Connection = c;
                    if (parse.GetValue(noStrict)) o.Strict = false;
                    if (parse.GetValue(logFormat) is { } f) o.LogFormat = f;
                }, configureBuilder: b =>
                {
                    // Loopback by default: exposing the server is a deliberate act (--urls, urls in the config file, ASPNETCORE_URLS).
                    if (string.IsNullOrEmpty(b.Configuration["urls"])) b.WebHost.UseUrls(DefaultUrl);
                }, cancellationToken: ct);
                await HostingAbstractionsHostExtensions.RunAsync(app, ct);
                return 0;
            }
            catch (ConcordException e)
            {
                await Console.Error.WriteLineAsync($"concord serve: {e.Message}");
                return 2;
            }
        });
        return command;
    }
}
