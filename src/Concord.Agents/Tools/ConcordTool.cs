using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Concord.Agents.Tools;

/// <summary>
/// One Concord tool: a hand-written JSON schema, strict argument checks, and faults turned into error results
/// (<see cref="ConcordException"/>: its code and whether a retry may help), so the model always gets an answer it can read.
/// </summary>
internal sealed class ConcordTool : AIFunction
{
    private readonly Func<ToolArgs, CancellationToken, ValueTask<JsonElement>> _body;
    private readonly string _agentId;

    public ConcordTool(string name, string description, JsonElement schema, Func<ToolArgs, CancellationToken, ValueTask<JsonElement>> body, string agentId)
    {
        Name = name;
        Description = description;
        JsonSchema = schema;
        _body = body;
        _agentId = agentId;
    }

    public override string Name { get; }

    public override string Description { get; }

    public override JsonElement JsonSchema { get; }

    protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
    {
        var callId = FunctionInvokingChatClient.CurrentContext?.CallContent.CallId;
        using var activity = AgentTelemetry.StartTool(Name, _agentId, callId);
        JsonElement result;
        try
        {
            result = await _body(new ToolArgs(arguments), cancellationToken).ConfigureAwait(false);
        }
        catch (ConcordException e)
        {
            result = ToolResult.Error(e.Code, e.Message, e.IsTransient ? "This may succeed if you try again." : "Fix the request; retrying it unchanged will fail the same way.", e.IsTransient);
        }
        var outcome = result.GetProperty("ok").GetBoolean() ? "ok" : result.TryGetProperty("conflict", out _) ? "conflict" : "error";
        AgentTelemetry.FinishTool(activity, Name, outcome);
        return result;
    }
}
