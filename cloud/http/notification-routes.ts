import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { NotificationChannelT, NotificationOutcomeT, type NotificationChannel, type NotificationOutcome } from '../../lib/vocabulary.ts';
import * as S from './schemas.ts';

const Outcome = Type.Object({
  channel: NotificationChannelT,
  outcome: NotificationOutcomeT,
  caseId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  event: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'the notification: dispatched, reminder, escalated, overdue' })),
}, { additionalProperties: false });
const Outcomes = Type.Union([Outcome, Type.Array(Outcome, { minItems: 1, maxItems: 100 })], {
  description: 'one notification outcome, or up to 100',
});
const Counted = Type.Object({ counted: Type.Integer({ description: 'outcomes counted' }) });

/**
 * `POST /api/notifications/outcomes` (integrator, admin): the notification flow (flows/flows/notifications.json)
 * reports each notification it sent or failed to send; counted in `cs_cloud_notifications_total{channel,outcome}`.
 */
export function registerNotificationRoutes(root: FastifyInstance, notified: (channel: NotificationChannel, outcome: NotificationOutcome) => void): void {
  const app = root.withTypeProvider<TypeBoxTypeProvider>();
  app.post('/api/notifications/outcomes', {
    config: { roles: ['integrator', 'admin'] },
    schema: {
      summary: 'Count case notifications sent or failed, by channel (reported by the Node-RED notification flow)',
      tags: ['health'], body: Outcomes, response: { 200: Counted, ...S.authErrors },
    },
  }, async (req) => {
    const items = Array.isArray(req.body) ? req.body : [req.body];
    for (const o of items) notified(o.channel, o.outcome);
    return { counted: items.length };
  });
}
