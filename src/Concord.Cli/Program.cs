using System.CommandLine;
using Concord.Cli.Commands;

var root = new RootCommand("Concord: shared state and coordination for concurrent agents, and the lab that finds their races.")
{
    DemoCommand.Create(),
    CheckCommand.Create(),
    ServeCommand.Create(),
    LabCommand.Create(),
};
var parseResult = root.Parse(args);
// SIGTERM/Ctrl+C cancel the command's token; give `serve` time to drain requests and flush the log (its own
// ShutdownTimeout, 10 s by default) before System.CommandLine would terminate the process (its default is 2 s).
var exitCode = await parseResult.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) });
// Bad arguments exit with 2 for every command (System.CommandLine's parse-error default is 1, which `check` uses for "anomaly").
return parseResult.Errors.Count > 0 ? 2 : exitCode;
