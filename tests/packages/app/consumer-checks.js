// What a topic worker does with @kalam-wasm/consumer: consume a batch and ack it.
import { createConsumerClient, Auth } from '@kalam-wasm/consumer';

export async function consumerChecks({ url, service, servicePassword, topic, tag }) {
  const client = createConsumerClient({ url, auth: Auth.basic(service, servicePassword) });
  const group = `g-${tag}`;
  const batch = await client.consumeBatch({ topic, group_id: group, start: 'earliest', batch_size: 100 });
  if (batch.messages.length === 0) throw new Error('consume: no messages');
  const last = batch.messages[batch.messages.length - 1];
  await client.ack(topic, group, last.partition_id, last.offset_exact);
  return { consumed: batch.messages.length };
}
