using System.CommandLine;
using Concord.Cli.Commands;

var root = new RootCommand("Concord: shared state and coordination for concurrent agents, and the lab that finds their races.")
{
    DemoCommand.Create(),
    CheckCommand.Create(),
    ServeCommand.Create(),
};
// SIGTERM/Ctrl+C cancel the command's token; give `serve` time to drain requests and flush the log (its own
// ShutdownTimeout, 10 s by default) before System.CommandLine would terminate the process (its default is 2 s).
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) });
