// interop.mjs: drives mcpgate with the TypeScript MCP SDK client.
//
// Usage: node interop.mjs <gateway /mcp URL> <nonce>
//
// It connects over Streamable HTTP, lists tools, calls up_greet with a
// progress callback, calls up_ask (the upstream asks this client for
// sampling and elicitation through the gateway), runs up_slow and up_ask as
// tasks with the SDK's experimental tasks API, then reads the task back
// with tasks/get and tasks/list. It prints one JSON summary on stdout; the
// Go test (gateway/interop_test.go) makes the assertions. Any failure is
// recorded in the summary's "errors" list rather than thrown, so that one
// broken step does not hide the others.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';

const RELATED_TASK = 'io.modelcontextprotocol/related-task';

const [url, nonce] = process.argv.slice(2);
if (!url || !nonce) {
  console.error('usage: node interop.mjs <gateway url> <nonce>');
  process.exit(2);
}

// The whole run is bounded: the Go test also kills us on its own timeout.
const watchdog = setTimeout(() => {
  console.error('interop.mjs: timed out');
  process.exit(3);
}, 60_000);

const summary = {
  protocolVersion: null,
  serverName: null,
  taskCapable: false,
  tools: [],
  greet: null,
  ask: null,
  sampling: [],
  elicitation: [],
  task: null,
  askTask: null,
  errors: [],
};

function text(result) {
  const c = result?.content?.find((x) => x.type === 'text');
  return c ? c.text : null;
}

async function step(name, fn) {
  try {
    await fn();
  } catch (err) {
    summary.errors.push(`${name}: ${err?.stack ?? err}`);
  }
}

// runTask calls a tool as a task and records what the stream yields.
async function runTask(name, args) {
  const out = { taskId: null, createdStatus: null, statuses: [], result: null, error: null };
  const stream = client.experimental.tasks.callToolStream(
    { name, arguments: args },
    CallToolResultSchema,
    { task: { ttl: 60_000 }, timeout: 30_000 },
  );
  for await (const msg of stream) {
    switch (msg.type) {
      case 'taskCreated':
        out.taskId = msg.task.taskId;
        out.createdStatus = msg.task.status;
        break;
      case 'taskStatus':
        out.statuses.push(msg.task.status);
        break;
      case 'result':
        out.result = text(msg.result);
        out.resultMeta = msg.result._meta ?? null;
        break;
      case 'error':
        out.error = String(msg.error?.message ?? msg.error);
        break;
    }
  }
  return out;
}

const client = new Client(
  { name: 'mcpgate-ts-interop', version: '1.0.0' },
  { capabilities: { sampling: {}, elicitation: { form: {} } } },
);

client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
  const first = req.params.messages?.[0]?.content;
  const q = Array.isArray(first) ? first.find((c) => c.type === 'text')?.text : first?.text;
  summary.sampling.push({ text: q ?? null, relatedTask: req.params._meta?.[RELATED_TASK]?.taskId ?? null });
  return {
    role: 'assistant',
    model: 'ts-model',
    content: { type: 'text', text: `ts-answer(${q})` },
    stopReason: 'endTurn',
  };
});

client.setRequestHandler(ElicitRequestSchema, async (req) => {
  summary.elicitation.push({
    message: req.params.message,
    mode: req.params.mode ?? 'form',
    relatedTask: req.params._meta?.[RELATED_TASK]?.taskId ?? null,
  });
  return { action: 'accept', content: { n: `ts-name-${nonce}` } };
});

client.setNotificationHandler(LoggingMessageNotificationSchema, () => {});

const transport = new StreamableHTTPClientTransport(new URL(url));

await step('connect', async () => {
  await client.connect(transport);
  summary.protocolVersion = transport.protocolVersion ?? null;
  summary.serverName = client.getServerVersion()?.name ?? null;
  summary.taskCapable = Boolean(client.getServerCapabilities()?.tasks?.requests?.tools?.call);
});

if (summary.errors.length === 0) {
  await step('tools/list', async () => {
    const res = await client.listTools();
    summary.tools = res.tools.map((t) => ({ name: t.name, taskSupport: t.execution?.taskSupport ?? null }));
  });

  await step('tools/call up_greet', async () => {
    const progress = [];
    const res = await client.callTool(
      { name: 'up_greet', arguments: { name: `ts-${nonce}` } },
      CallToolResultSchema,
      { onprogress: (p) => progress.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null }) },
    );
    summary.greet = { text: text(res), isError: Boolean(res.isError), progress };
  });

  await step('tools/call up_ask', async () => {
    const res = await client.callTool({ name: 'up_ask', arguments: { q: `sync-${nonce}` } });
    summary.ask = { text: text(res), isError: Boolean(res.isError) };
  });

  await step('task up_slow', async () => {
    summary.task = await runTask('up_slow', { word: `ts-${nonce}` });
    if (summary.task.taskId) {
      const got = await client.experimental.tasks.getTask(summary.task.taskId);
      summary.task.get = { taskId: got.taskId, status: got.status };
      const list = await client.experimental.tasks.listTasks();
      summary.task.listed = list.tasks.map((t) => t.taskId);
    }
  });

  await step('task up_ask', async () => {
    summary.askTask = await runTask('up_ask', { q: `task-${nonce}` });
  });
}

await step('close', async () => {
  await transport.terminateSession().catch(() => {});
  await client.close();
});

clearTimeout(watchdog);
process.stdout.write(JSON.stringify(summary) + '\n');
