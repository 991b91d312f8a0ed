/**
 * The $cbs node: put-token requests with a shared access signature, granting the connection a claim
 * on the resource the token covers until it expires.
 */
import type { Connection, Message } from 'rhea';
import { reply, type LinkHost } from './links.js';
import { covers, resourcePath, verifySasToken } from './sas.js';

const SAS_TOKEN_TYPE = 'servicebus.windows.net:sastoken';

export function onCbsRequest(host: LinkHost, connection: Connection, request: Message): void {
  const props = (request.application_properties ?? {}) as Record<string, unknown>;
  const respond = (status: number, description: string, condition?: string): void => {
    reply(host.stateIfOpen(connection), request.reply_to, {
      correlation_id: request.message_id,
      application_properties: {
        'status-code': status,
        'status-description': description,
        ...(condition ? { 'error-condition': condition } : {}),
      },
      body: undefined,
    });
  };
  if (props.operation !== 'put-token') return respond(400, `unsupported CBS operation '${String(props.operation)}'`, 'amqp:not-implemented');
  if (props.type !== SAS_TOKEN_TYPE) {
    return respond(401, 'the emulator accepts only shared access signatures (servicebus.windows.net:sastoken)', 'amqp:unauthorized-access');
  }
  if (typeof props.name !== 'string' || typeof request.body !== 'string') {
    return respond(400, 'put-token needs an audience (name) and a token (body)', 'com.microsoft:argument-error');
  }
  const check = verifySasToken(request.body, { keyName: host.keyName, key: host.key, nowSec: Math.floor(Date.now() / 1000) });
  if (!check.ok) return respond(401, check.reason, 'amqp:unauthorized-access');
  const wanted = resourcePath(props.name);
  const granted = resourcePath(check.token.resource);
  if (!covers(granted, wanted)) {
    return respond(401, `InvalidAudience: the token is for '${check.token.resource}', not '${props.name}'`, 'amqp:unauthorized-access');
  }
  const hubName = wanted.split('/')[0] ?? '';
  if (hubName !== '' && hubName !== '$management' && hubName !== '$cbs' && !host.findHub(hubName)) {
    return respond(404, `The messaging entity '${props.name}' could not be found.`, 'amqp:not-found');
  }
  host.state(connection).claims.set(wanted, check.token.expiresAtSec);
  respond(202, 'Accepted');
}
