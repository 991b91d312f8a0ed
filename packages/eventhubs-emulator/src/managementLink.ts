/**
 * The $management node on the wire: a request's security token checked, then answered by
 * handleManagementRequest (management.ts) on the reply link the client named.
 */
import type { Connection, Message } from 'rhea';
import { reply, type LinkHost } from './links.js';
import { handleManagementRequest } from './management.js';
import { covers, resourcePath, verifySasToken } from './sas.js';

export function onManagementRequest(host: LinkHost, connection: Connection, request: Message): void {
  const props = (request.application_properties ?? {}) as Record<string, unknown>;
  let result;
  const token = props.security_token;
  const check = typeof token === 'string' ? verifySasToken(token, { keyName: host.keyName, key: host.key, nowSec: Math.floor(Date.now() / 1000) }) : undefined;
  const hubPath = typeof props.name === 'string' ? props.name.toLowerCase() : '';
  if (!check || !check.ok) {
    result = { status: 401, description: check ? check.reason : 'a security_token is required', condition: 'amqp:unauthorized-access' };
  } else if (!covers(resourcePath(check.token.resource), hubPath)) {
    result = { status: 401, description: `the token does not grant access to '${String(props.name)}'`, condition: 'amqp:unauthorized-access' };
  } else {
    result = handleManagementRequest({ operation: props.operation, type: props.type, name: props.name, partition: props.partition }, (n) => host.findHub(n));
  }
  const message: Message = {
    body: undefined,
    correlation_id: request.message_id,
    application_properties: {
      'status-code': result.status,
      'status-description': result.description,
      ...('condition' in result && result.condition ? { 'error-condition': result.condition } : {}),
    },
  };
  if ('body' in result && result.body !== undefined) message.body = result.body;
  reply(host.stateIfOpen(connection), request.reply_to, message);
}
