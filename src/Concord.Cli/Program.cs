using System.CommandLine;
using Concord.Cli.Commands;

var root = new RootCommand("Concord: shared state and coordination for concurrent agents, and the lab that finds their races.")
{
    DemoCommand.Create(),
    CheckCommand.Create(),
    ServeCommand.Create(),
};
var parseResult = root.Parse(args);
var exitCode = await parseResult.InvokeAsync();
// Bad arguments exit with 2 for every command (System.CommandLine's parse-error default is 1, which `check` uses for "anomaly").
return parseResult.Errors.Count > 0 ? 2 : exitCode;
