// matrix.mjs: drives mcpgate with the TypeScript SDK 2.4.0 client
// (@modelcontextprotocol/client, protocol 2026-07-28), for the gateway's
// interop matrix (gateway/interop_matrix_test.go).
//
// Usage: node matrix.mjs <gateway /mcp URL> <bearer token> <answer> <spec JSON>
//
// For each upstream of the spec (tool prefix, and whether <prefix>slow is
// task-capable and <prefix>poke changes the tool list) it lists tools,
// calls <prefix>add, calls <prefix>add with a=666 (the gateway's policy
// denies it), calls <prefix>greet and <prefix>sample (the upstream's
// elicitation and sampling reach this client as MRTR input requests,
// answered with <answer> by the handlers below), and waits on
// subscriptions/listen for the list change <prefix>poke causes. It also
// tries to run <prefix>slow as a task of the Tasks extension, which the
// SDK has no API for (see runTask): with 2.4.0 that step fails with
// "Unsupported result type 'task'", and the Go test records the cell's
// task as not applicable. It prints one JSON report on
// stdout; the Go test makes the assertions. A failed step is recorded in
// the report, not thrown.

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import * as z from 'zod';

const TASKS = 'io.modelcontextprotocol/tasks';

const [url, token, answer, specJSON] = process.argv.slice(2);
if (!url || !token || !answer || !specJSON) {
    console.error('usage: node matrix.mjs <url> <token> <answer> <spec JSON>');
    process.exit(2);
}
const specs = JSON.parse(specJSON);

const watchdog = setTimeout(() => {
    console.error('matrix.mjs: timed out');
    process.exit(3);
}, 90_000);

const report = { client: '@modelcontextprotocol/client 2.4.0', protocolVersion: null, unauthorized: null, cells: [], errors: [] };

function text(result) {
    return (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join(' ');
}

function newClient(withToken) {
    const client = new Client(
        { name: 'mcpgate-ts2026-matrix', version: '1.0.0' },
        { capabilities: { sampling: {}, elicitation: { form: {} }, extensions: { [TASKS]: {} } }, versionNegotiation: { mode: 'auto' } }
    );
    client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { name: answer } }));
    client.setRequestHandler('sampling/createMessage', async () => ({
        model: 'ts2026-model',
        role: 'assistant',
        content: { type: 'text', text: answer }
    }));
    const headers = withToken ? { Authorization: `Bearer ${token}` } : {};
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
    return { client, transport };
}

// Without a token the gateway refuses the connection.
{
    const { client, transport } = newClient(false);
    try {
        await client.connect(transport);
        report.unauthorized = 'connected without a token';
        await client.close();
    } catch (err) {
        report.unauthorized = `${err?.code ?? ''} ${err?.message ?? err}`;
    }
}

const { client, transport } = newClient(true);
let changed = 0;
let wake = null;
client.setNotificationHandler('notifications/tools/list_changed', () => {
    changed++;
    if (wake) wake();
});
try {
    await client.connect(transport);
    report.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
} catch (err) {
    report.errors.push(`connect: ${err?.stack ?? err}`);
}

// runTask runs a tool as a task of the Tasks extension. The SDK has no
// API for the extension: the client declares it in its capabilities and
// sends the requests with request() and a loose result schema. SDK 2.4.0
// still rejects the task result (its decoder knows only complete and
// input_required results).
async function runTask(name, args) {
    const any = z.object({}).passthrough();
    const created = await client.request({ method: 'tools/call', params: { name, arguments: args } }, any);
    if (created.resultType !== 'task' || !created.taskId) {
        throw new Error(`tools/call did not make a task: ${JSON.stringify(created)}`);
    }
    for (let i = 0; i < 400; i++) {
        const got = await client.request({ method: 'tasks/get', params: { taskId: created.taskId } }, any);
        if (got.status === 'completed') return text(got.result);
        if (got.status === 'failed' || got.status === 'cancelled') throw new Error(`task ${got.status}: ${JSON.stringify(got)}`);
        await new Promise((r) => setTimeout(r, Math.min(Math.max(got.pollIntervalMs ?? 50, 10), 250)));
    }
    throw new Error('the task did not complete');
}

let subscription = null;
if (report.errors.length === 0) {
    try {
        subscription = await client.listen({ toolsListChanged: true });
    } catch (err) {
        report.errors.push(`subscriptions/listen: ${err?.stack ?? err}`);
    }
    for (const spec of specs) {
        const cell = { prefix: spec.prefix, tools: [], add: '', denied: '', greet: '', sample: '', task: '', taskHow: '', listChanged: false, listedAfterChange: false, errors: [] };
        const step = async (name, fn) => {
            try {
                await fn();
            } catch (err) {
                cell.errors.push(`${name}: ${err?.message ?? err}`);
            }
        };
        const toolNames = async () => (await client.listTools(undefined, { cacheMode: 'bypass' })).tools.map((t) => t.name);
        await step('tools/list', async () => {
            cell.tools = (await toolNames()).filter((n) => n.startsWith(spec.prefix));
        });
        await step('add', async () => {
            cell.add = text(await client.callTool({ name: `${spec.prefix}add`, arguments: { a: 2, b: 3 } }));
        });
        try {
            await client.callTool({ name: `${spec.prefix}add`, arguments: { a: 666, b: 1 } });
            cell.denied = 'not denied';
        } catch (err) {
            cell.denied = `${err?.code ?? ''} ${err?.message ?? err}`;
        }
        await step('greet', async () => {
            cell.greet = text(await client.callTool({ name: `${spec.prefix}greet`, arguments: {} }));
        });
        await step('sample', async () => {
            cell.sample = text(await client.callTool({ name: `${spec.prefix}sample`, arguments: {} }));
        });
        if (spec.task) {
            cell.taskHow = 'Tasks extension through the SDK\'s generic request(): tools/call answered with resultType task, tasks/get polled until completed';
            await step('task', async () => {
                cell.task = await runTask(`${spec.prefix}slow`, { word: answer });
            });
        }
        if (spec.poke && subscription) {
            await step('list change', async () => {
                const before = changed;
                const name = `new_${answer.replaceAll('-', '_')}`;
                const seen = new Promise((resolve, reject) => {
                    const timer = setTimeout(() => reject(new Error('no notifications/tools/list_changed within 20s')), 20_000);
                    wake = () => {
                        if (changed > before) {
                            clearTimeout(timer);
                            resolve();
                        }
                    };
                });
                await client.callTool({ name: `${spec.prefix}poke`, arguments: { name } });
                await seen;
                cell.listChanged = true;
                cell.listedAfterChange = (await toolNames()).includes(`${spec.prefix}${name}`);
            });
        }
        report.cells.push(cell);
    }
}

try {
    await subscription?.close();
    await client.close();
} catch (err) {
    report.errors.push(`close: ${err?.message ?? err}`);
}
clearTimeout(watchdog);
console.log(JSON.stringify(report));
process.exit(0);
