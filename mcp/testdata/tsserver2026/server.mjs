// A 2026-07-28-only MCP server made with the TypeScript SDK
// (@modelcontextprotocol/server 2.4.0, createMcpHandler with
// legacy: 'reject'), for mcp/modern_client_interop_test.go and the
// gateway's interop tests. poke adds a tool and announces the change on
// the subscriptions/listen streams. It listens on
// 127.0.0.1 at a free port, prints "LISTENING <port>", and exits when its
// standard input closes.
import http from 'node:http';
import { McpServer, createMcpHandler, inputRequired, acceptedContent, inputResponse } from '@modelcontextprotocol/server';
import * as z from 'zod';

function factory() {
    const s = new McpServer({ name: 'ts-modern', version: '2.4.0' });
    s.registerTool('add', {
        description: 'Adds two numbers',
        inputSchema: z.object({ a: z.number(), b: z.number() })
    }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
    s.registerTool('region', {
        description: 'Echoes a region mirrored in the Mcp-Param-Region header',
        inputSchema: z.object({ region: z.string().meta({ 'x-mcp-header': 'Region' }) })
    }, async ({ region }) => ({ content: [{ type: 'text', text: `region ${region}` }] }));
    s.registerTool('greet', {
        description: 'Asks for a name by elicitation (MRTR)',
        inputSchema: z.object({})
    }, async (_args, ctx) => {
        const got = acceptedContent(ctx.mcpReq.inputResponses, 'name');
        if (!got) {
            return inputRequired({
                inputRequests: {
                    name: inputRequired.elicit({
                        message: 'Name?',
                        requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] }
                    })
                },
                requestState: 'round-1'
            });
        }
        const state = typeof ctx.mcpReq.requestState === 'function' ? ctx.mcpReq.requestState() : ctx.mcpReq.requestState;
        return { content: [{ type: 'text', text: `hello ${got.name} (state ${state})` }] };
    });
    s.registerTool('sample', {
        description: 'Asks the client to sample a message (MRTR)',
        inputSchema: z.object({})
    }, async (_args, ctx) => {
        const got = inputResponse(ctx.mcpReq.inputResponses, 'answer');
        if (got.kind !== 'sampling') {
            return inputRequired({
                inputRequests: {
                    answer: inputRequired.createMessage({
                        messages: [{ role: 'user', content: { type: 'text', text: 'sample-me' } }],
                        maxTokens: 16
                    })
                }
            });
        }
        const c = Array.isArray(got.result.content) ? got.result.content[0] : got.result.content;
        return { content: [{ type: 'text', text: `sampled:${c?.text}` }] };
    });
    s.registerTool('poke', {
        description: 'Adds the tool it names and announces the list change (subscriptions/listen)',
        inputSchema: z.object({ name: z.string() })
    }, async ({ name }) => {
        poked.add(name);
        handler.notify.toolsChanged();
        return { content: [{ type: 'text', text: 'poked' }] };
    });
    for (const name of poked) {
        s.registerTool(name, { description: 'Added by poke', inputSchema: z.object({}) },
            async () => ({ content: [{ type: 'text', text: name }] }));
    }
    return s;
}

// The tools poke added: every request's server instance registers them.
const poked = new Set();

const handler = createMcpHandler(factory, { legacy: 'reject' });

const server = http.createServer(async (req, res) => {
    try {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        const headers = new Headers();
        for (const [k, v] of Object.entries(req.headers)) {
            if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
            else if (v !== undefined) headers.set(k, v);
        }
        const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
        const request = new Request(`http://${req.headers.host}${req.url}`, {
            method: req.method,
            headers,
            body: hasBody ? Buffer.concat(chunks) : undefined
        });
        const response = await handler.fetch(request);
        res.writeHead(response.status, Object.fromEntries(response.headers));
        if (response.body) {
            for await (const chunk of response.body) res.write(chunk);
        }
        res.end();
    } catch (err) {
        console.error(err);
        if (!res.headersSent) res.writeHead(500);
        res.end();
    }
});
server.listen(0, '127.0.0.1', () => {
    console.log(`LISTENING ${server.address().port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
