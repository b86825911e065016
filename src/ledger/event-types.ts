/** Organization-defined event types (the built-in ones live in catalog/builtin-event-types.ts). */
import type { Sql } from './connection.ts';

/** An event type as the catalog knows it, built-in (catalog/builtin-event-types.ts) or stored here. */
export type Priority = 'high' | 'normal';
export type JsonSchema = Record<string, unknown>;
export type EventTypeDefinition = { name: string; description: string; priority: Priority; schema: JsonSchema };

type Row = { name: string; description: string | null; schema: JsonSchema; priority: Priority };

export async function findCustomEventType(sql: Sql, organizationId: string, name: string): Promise<Row | undefined> {
  const [row] = await sql<Row[]>`
    SELECT name, description, schema, priority FROM event_types WHERE organization_id = ${organizationId} AND name = ${name}`;
  return row;
}

export async function listCustomEventTypes(sql: Sql, organizationId: string): Promise<Row[]> {
  return sql<Row[]>`SELECT name, description, schema, priority FROM event_types WHERE organization_id = ${organizationId} ORDER BY name`;
}

export async function insertCustomEventType(sql: Sql, organizationId: string, def: EventTypeDefinition): Promise<boolean> {
  const rows = await sql`
    INSERT INTO event_types (organization_id, name, description, schema, priority)
    VALUES (${organizationId}, ${def.name}, ${def.description}, ${sql.json(def.schema as never)}, ${def.priority})
    ON CONFLICT DO NOTHING RETURNING name`;
  return rows.length > 0;
}
