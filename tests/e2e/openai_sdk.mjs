// The official openai npm SDK, unchanged, against cai serve.
// usage: node tests/e2e/openai_sdk.mjs BASE_URL MODEL_ID
import OpenAI from 'openai';

const [base, model] = process.argv.slice(2);
// A bounded wait: a hung answer fails the check instead of the suite.
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'sk-test-key', timeout: 60000 });
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log('PASS ' + name);
  } catch (e) {
    failed++;
    console.log('FAIL ' + name + ': ' + (e && e.message ? e.message : e));
  }
}
const assert = (c, m) => { if (!c) throw new Error(m); };

await check('sdk_models_list', async () => {
  const list = await client.models.list();
  const ids = [];
  for await (const m of list) ids.push(m.id);
  assert(ids.includes(model), 'model list: ' + JSON.stringify(ids));
});

let text = null;
await check('sdk_chat_completion', async () => {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }],
    max_tokens: 8, seed: 42, temperature: 0.7,
  });
  assert(r.object === 'chat.completion' && r.choices[0].message.role === 'assistant', JSON.stringify(r));
  assert(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 8, 'usage');
  text = r.choices[0].message.content;
});

await check('sdk_chat_stream', async () => {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }],
    max_tokens: 8, seed: 42, temperature: 0.7, stream: true, stream_options: { include_usage: true },
  });
  let got = '', usage = null, finish = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (c) { got += c.delta.content || ''; finish = c.finish_reason || finish; }
  }
  assert(got === text, `streamed "${got}" != non-streamed "${text}"`);
  assert(usage && usage.completion_tokens > 0 && finish, 'usage/finish missing');
});

await check('sdk_error_is_api_error', async () => {
  try {
    await client.chat.completions.create({ model, messages: [], max_tokens: 1 });
    throw new Error('accepted an empty conversation');
  } catch (e) {
    assert(e instanceof OpenAI.APIError && e.status === 400, 'not a 400 APIError: ' + e);
  }
});

process.exit(failed ? 1 : 0);
