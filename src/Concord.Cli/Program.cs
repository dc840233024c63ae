using System.CommandLine;
using Concord.Cli.Commands;

var root = new RootCommand("Concord: shared state and coordination for concurrent agents, and the lab that finds their races.")
{
    DemoCommand.Create(),
    CheckCommand.Create(),
    ServeCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
