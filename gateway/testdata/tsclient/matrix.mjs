// matrix.mjs: drives mcpgate with the TypeScript SDK 1.32.2 client
// (@modelcontextprotocol/sdk, protocol 2025-11-25), for the gateway's
// interop matrix (gateway/interop_matrix_test.go).
//
// Usage: node matrix.mjs <gateway /mcp URL> <bearer token> <answer> <spec JSON>
//
// For each upstream of the spec (tool prefix, and whether <prefix>slow is
// task-capable and <prefix>poke changes the tool list) it lists tools,
// calls <prefix>add, calls <prefix>add with a=666 (the gateway's policy
// denies it), calls <prefix>greet and <prefix>sample (the upstream's
// elicitation and sampling reach this client as server-to-client
// requests, answered with <answer>), runs <prefix>slow as a task with the
// SDK's experimental tasks API, and waits on the session's stream for the
// list change <prefix>poke causes. It prints one JSON report on stdout;
// the Go test makes the assertions. A failed step is recorded in the
// report, not thrown.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
    CallToolResultSchema,
    CreateMessageRequestSchema,
    ElicitRequestSchema,
    ToolListChangedNotificationSchema
} from '@modelcontextprotocol/sdk/types.js';

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

const report = { client: '@modelcontextprotocol/sdk 1.32.2', protocolVersion: null, unauthorized: null, cells: [], errors: [] };

function text(result) {
    return (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join(' ');
}

function newClient(withToken) {
    const client = new Client(
        { name: 'mcpgate-ts1-matrix', version: '1.0.0' },
        { capabilities: { sampling: {}, elicitation: { form: {} } } }
    );
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: answer } }));
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
        role: 'assistant',
        model: 'ts1-model',
        content: { type: 'text', text: answer },
        stopReason: 'endTurn'
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
client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    changed++;
    if (wake) wake();
});
try {
    await client.connect(transport);
    report.protocolVersion = transport.protocolVersion ?? null;
} catch (err) {
    report.errors.push(`connect: ${err?.stack ?? err}`);
}

// runTask calls a tool as a task and returns the result's text.
async function runTask(name, args) {
    let result = '';
    const stream = client.experimental.tasks.callToolStream({ name, arguments: args }, CallToolResultSchema, {
        task: { ttl: 60_000 },
        timeout: 30_000
    });
    for await (const msg of stream) {
        if (msg.type === 'result') result = text(msg.result);
        if (msg.type === 'error') throw new Error(String(msg.error?.message ?? msg.error));
    }
    return result;
}

if (report.errors.length === 0) {
    for (const spec of specs) {
        const cell = { prefix: spec.prefix, tools: [], add: '', denied: '', greet: '', sample: '', task: '', taskHow: '', listChanged: false, listedAfterChange: false, errors: [] };
        const step = async (name, fn) => {
            try {
                await fn();
            } catch (err) {
                cell.errors.push(`${name}: ${err?.message ?? err}`);
            }
        };
        const toolNames = async () => (await client.listTools()).tools.map((t) => t.name);
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
            cell.taskHow = '2025-11-25 core tasks: client.experimental.tasks.callToolStream';
            await step('task', async () => {
                cell.task = await runTask(`${spec.prefix}slow`, { word: answer });
            });
        }
        if (spec.poke) {
            // The SDK opens its GET stream in the background after
            // connecting, with no event to wait for, and a server drops
            // notifications while no GET stream is open: so poke again
            // (with a new tool) if no notification came within 5 s, at
            // most 4 times.
            await step('list change', async () => {
                for (let attempt = 1; attempt <= 4 && !cell.listChanged; attempt++) {
                    const before = changed;
                    const name = `new_${answer.replaceAll('-', '_')}_${attempt}`;
                    const seen = new Promise((resolve) => {
                        const timer = setTimeout(() => resolve(false), 5_000);
                        wake = () => {
                            if (changed > before) {
                                clearTimeout(timer);
                                resolve(true);
                            }
                        };
                    });
                    await client.callTool({ name: `${spec.prefix}poke`, arguments: { name } });
                    if (await seen) {
                        cell.listChanged = true;
                        cell.listedAfterChange = (await toolNames()).includes(`${spec.prefix}${name}`);
                    }
                }
                if (!cell.listChanged) throw new Error('no notifications/tools/list_changed after 4 pokes, 5 s each');
            });
        }
        report.cells.push(cell);
    }
}

try {
    await transport.terminateSession().catch(() => {});
    await client.close();
} catch (err) {
    report.errors.push(`close: ${err?.message ?? err}`);
}
clearTimeout(watchdog);
console.log(JSON.stringify(report));
process.exit(0);
