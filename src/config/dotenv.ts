/**
 * Loaded first by the npm scripts (`node --import ./src/config/dotenv.ts`): reads ./.env when there
 * is one, and says nothing when there is none. Node's own --env-file-if-exists prints ".env not
 * found. Continuing without it." on every command instead. Like that flag, a variable already set in
 * the environment wins over the file.
 */
import { existsSync } from 'node:fs';

if (existsSync('.env')) process.loadEnvFile('.env');
