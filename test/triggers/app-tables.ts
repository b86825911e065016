/**
 * The seed's application tables (users, agents, conversations, messages, external_integrations), in a
 * schema of their own per test so parallel test files never share them, created in Carteiro's own
 * database (the embedded one too) the way a Supabase project has them beside Carteiro's schema.
 */
import { randomBytes } from 'node:crypto';
import type { Sql } from '../../src/ledger/connection.ts';
import { createSecretBox, parseKeyring } from '../../src/crypto/secret-box.ts';
import { createDataProtection } from '../../src/protection/data-protection.ts';
import { TEST_ENCRYPTION_KEYS } from '../support/carteiro.ts';

// The sealing pass (migration 0010) encrypts captured personal fields about a second after commit;
// these tests check what the capture wrote, so they read it opened, whenever the pass ran.
const opened = createDataProtection(createSecretBox(parseKeyring(TEST_ENCRYPTION_KEYS)), { piiFields: [] });

export const SEED_TABLES_SQL = (schema: string) => `
  CREATE SCHEMA "${schema}";
  CREATE TABLE "${schema}".users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text NOT NULL, name text, created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE "${schema}".agents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id uuid, name text NOT NULL, description text, created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE "${schema}".conversations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), agent_id uuid, user_id uuid, channel text, created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE "${schema}".messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), conversation_id uuid NOT NULL, user_id uuid, role text, content text,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE "${schema}".external_integrations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id uuid, provider text NOT NULL, is_active boolean NOT NULL DEFAULT true,
    phone_number text, created_at timestamptz NOT NULL DEFAULT now());`;

export function appSchemaName(): string {
  return `app_${randomBytes(5).toString('hex')}`;
}

export async function createSeedTables(sql: Sql, schema: string): Promise<void> {
  await sql.unsafe(SEED_TABLES_SQL(schema));
}

export async function dropAppSchema(sql: Sql, schema: string): Promise<void> {
  await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

export type CapturedEventRow = {
  id: string;
  organization_id: string;
  event_type: string;
  event_source: string;
  table_name: string | null;
  record_id: string | null;
  user_id: string | null;
  data: any;
  status: string;
  error_message: string | null;
};

/**
 * Events from table captures, by transaction (created_at is the transaction's start). Within one
 * statement the order is not the rows' order: uuid_v7() is random inside a millisecond.
 */
export async function capturedEvents(sql: Sql, where: { table?: string } = {}): Promise<CapturedEventRow[]> {
  const rows = await sql<CapturedEventRow[]>`
    SELECT id, organization_id, event_type, event_source, table_name, record_id, user_id, data, status, error_message
    FROM webhook_events
    WHERE event_source = 'supabase' AND (${where.table ?? null}::text IS NULL OR table_name = ${where.table ?? null})
    ORDER BY created_at, id`;
  return rows.map((r) => ({ ...r, data: opened.reveal(r.data) }));
}
