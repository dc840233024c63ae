using System.Diagnostics;
using System.Diagnostics.Metrics;
using Concord.Diagnostics;

namespace Concord.Agents;

/// <summary>
/// Spans and metrics of the agent runtime and tools, on Concord's <see cref="ConcordTelemetry.ActivitySource"/> and
/// <see cref="ConcordTelemetry.Meter"/>, with the OpenTelemetry GenAI attribute names: an <c>invoke_agent</c> span per task or
/// event an agent handles and an <c>execute_tool</c> span per tool call, both tagged <c>gen_ai.agent.id</c> and
/// <c>gen_ai.agent.name</c>. Store spans (<see cref="InstrumentedStore"/>) opened inside become their children.
/// </summary>
public static class AgentTelemetry
{
    /// <summary>Attribute names beyond <see cref="ConcordTelemetry.Tags"/>.</summary>
    public static class Tags
    {
        /// <summary>GenAI: the operation (<c>invoke_agent</c>, <c>execute_tool</c>).</summary>
        public const string OperationName = "gen_ai.operation.name";
        /// <summary>GenAI: tool name.</summary>
        public const string ToolName = "gen_ai.tool.name";
        /// <summary>GenAI: tool call id.</summary>
        public const string ToolCallId = "gen_ai.tool.call.id";
        /// <summary>Queue of the task.</summary>
        public const string Queue = "concord.queue";
        /// <summary>Stream of the event.</summary>
        public const string Stream = "concord.stream";
        /// <summary>Task or event id.</summary>
        public const string TaskId = "concord.task.id";
        /// <summary>Attempt (1-based).</summary>
        public const string Attempt = "concord.task.attempt";
        /// <summary>Outcome: completed, failed, dead_lettered, lease_lost, returned, ok, conflict, error.</summary>
        public const string Outcome = "concord.agent.outcome";
    }

    /// <summary><c>concord.agent.tasks</c>: tasks and events handled, by <c>gen_ai.agent.id</c> and <c>concord.agent.outcome</c>.</summary>
    public static Counter<long> Tasks { get; } = ConcordTelemetry.Meter.CreateCounter<long>("concord.agent.tasks", "{task}", "Tasks and events handled by agents, by outcome");

    /// <summary><c>concord.agent.tool_calls</c>: tool calls by <c>gen_ai.tool.name</c> and <c>concord.agent.outcome</c> (ok, conflict, error).</summary>
    public static Counter<long> ToolCalls { get; } = ConcordTelemetry.Meter.CreateCounter<long>("concord.agent.tool_calls", "{call}", "Concord tool calls by tool and outcome");

    internal static Activity? StartInvoke(AgentIdentity agent, string source, string? taskId, int attempt, bool isStream)
    {
        var activity = ConcordTelemetry.ActivitySource.StartActivity("invoke_agent " + agent.DisplayName, ActivityKind.Consumer);
        if (activity is null) return null;
        activity.SetTag(Tags.OperationName, "invoke_agent");
        activity.SetTag(ConcordTelemetry.Tags.AgentId, agent.Id);
        activity.SetTag(ConcordTelemetry.Tags.AgentName, agent.DisplayName);
        activity.SetTag(isStream ? Tags.Stream : Tags.Queue, source);
        activity.SetTag(Tags.TaskId, taskId);
        activity.SetTag(Tags.Attempt, attempt);
        return activity;
    }

    internal static void Finish(Activity? activity, AgentIdentity agent, string outcome, Exception? error = null)
    {
        Tasks.Add(1, new KeyValuePair<string, object?>(ConcordTelemetry.Tags.AgentId, agent.Id), new KeyValuePair<string, object?>(Tags.Outcome, outcome));
        if (activity is null) return;
        activity.SetTag(Tags.Outcome, outcome);
        if (error is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, error.Message);
            activity.AddException(error);
        }
    }

    internal static Activity? StartTool(string tool, string agentId, string? callId)
    {
        var activity = ConcordTelemetry.ActivitySource.StartActivity("execute_tool " + tool, ActivityKind.Internal);
        if (activity is null) return null;
        activity.SetTag(Tags.OperationName, "execute_tool");
        activity.SetTag(Tags.ToolName, tool);
        activity.SetTag(ConcordTelemetry.Tags.AgentId, agentId);
        if (callId is not null) activity.SetTag(Tags.ToolCallId, callId);
        return activity;
    }

    internal static void FinishTool(Activity? activity, string tool, string outcome)
    {
        ToolCalls.Add(1, new KeyValuePair<string, object?>(Tags.ToolName, tool), new KeyValuePair<string, object?>(Tags.Outcome, outcome));
        activity?.SetTag(Tags.Outcome, outcome);
    }
}
