// Who wrote a plan: a US Core Provenance added to the write's transaction Bundle, so the change and the record of
// who made it commit together. Pure: no I/O; the time and ids come from the caller.
import type { Bundle, BundleEntry, CarePlan, Provenance, Reference } from 'fhir/r4.js';
import { EXTENSION, SYSTEM, type UsCoreVersion, usCoreProfiles } from './codes.js';

/** US Core Provenance of the default US Core version (6.1.0). */
export const US_CORE_PROVENANCE = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance|6.1.0';
/** The namespace of the OAuth client ids that identify callers in Provenance.agent.who. */
export const OAUTH_CLIENT_SYSTEM = 'https://shared-care-plans.org/fhir/sid/oauth-client';
const DATA_OPERATION = 'http://terminology.hl7.org/CodeSystem/v3-DataOperation';
const PARTICIPANT_TYPE = 'http://terminology.hl7.org/CodeSystem/provenance-participant-type';

export interface ProvenanceAgent {
  /** The OAuth client of the caller, when known. */
  clientId?: string;
  /** Plain text naming the caller (client and user), shown as the plan history's changedBy. */
  display: string;
  /**
   * The person who made the change (the token's fhirUser), with a name: then the first agent (author) is the
   * person and the client is the second (transmitter).
   */
  person?: { reference: string; display?: string };
}

/** US Core's participant type for the system that sent the data (its ProvenanceTransmitter slice). */
const US_CORE_PARTICIPANT_TYPE = 'http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type';

export interface ProvenanceOptions {
  activity: 'CREATE' | 'UPDATE';
  agent: ProvenanceAgent;
  /** When the change is recorded (an instant). */
  recorded: string;
  /** For an idempotent create: a tag that makes the Provenance conditional, so a retried transaction adds no second one. */
  idempotencyTag?: string;
  /**
   * The uuid of the Provenance entry's `urn:uuid:` fullUrl: every entry of the transaction has a fullUrl, so the
   * relative reference in Provenance.target resolves within the Bundle (R4 Bundle.entry.fullUrl).
   */
  uuid?: string;
  /** The US Core version whose us-core-provenance is claimed (default 6.1.0). */
  usCoreVersion?: UsCoreVersion;
}

/** Provenance.agent.who: never a literal reference, which a server enforcing referential integrity could refuse. */
export function agentReference(agent: ProvenanceAgent): Reference {
  return {
    ...(agent.clientId ? { identifier: { system: OAUTH_CLIENT_SYSTEM, value: agent.clientId } } : {}),
    display: agent.display,
  };
}

/**
 * The Provenance targets the CarePlan only: its version covers every part of the plan (plan-revision), and a
 * reference to a part would stop a server with referential integrity (HAPI) from ever deleting that part.
 */
function entryReference(entry: BundleEntry): string | undefined {
  if (entry.resource?.resourceType !== 'CarePlan') return undefined;
  if (entry.request?.method === 'POST') return entry.fullUrl;
  if (entry.request?.method === 'PUT') return entry.request.url;
  return undefined;
}

/** The plan-revision value of the CarePlan written by a transaction: it ties the Provenance to that version. */
export function planRevision(carePlan: CarePlan | undefined): string | undefined {
  return carePlan?.extension?.find((e) => e.url === EXTENSION.planRevision)?.valueString;
}

/**
 * The transaction with a Provenance entry appended: target = the CarePlan, agent = the caller (type author), activity CREATE or UPDATE, and the plan-revision of the
 * CarePlan version it records, so a version of the plan can be matched to its Provenance.
 */
export function withProvenance(bundle: Bundle, options: ProvenanceOptions): Bundle {
  const entries = bundle.entry ?? [];
  const targets = entries.map(entryReference).filter((r): r is string => !!r);
  const carePlan = entries.find((e) => e.resource?.resourceType === 'CarePlan')?.resource as
    | CarePlan
    | undefined;
  const revision = planRevision(carePlan);
  const provenance: Provenance = {
    resourceType: 'Provenance',
    meta: {
      profile: [
        options.usCoreVersion ? usCoreProfiles(options.usCoreVersion).provenance : US_CORE_PROVENANCE,
      ],
      ...(options.idempotencyTag
        ? { tag: [{ system: SYSTEM.idempotencyKey, code: options.idempotencyTag }] }
        : {}),
    },
    ...(revision ? { extension: [{ url: EXTENSION.planRevision, valueString: revision }] } : {}),
    target: targets.map((reference) => ({ reference })),
    recorded: options.recorded,
    activity: {
      coding: [{ system: DATA_OPERATION, code: options.activity, display: options.activity.toLowerCase() }],
    },
    agent: agents(options.agent),
  };
  const entry: BundleEntry = {
    ...(options.uuid ? { fullUrl: `urn:uuid:${options.uuid}` } : {}),
    resource: provenance,
    request: {
      method: 'POST',
      url: 'Provenance',
      ...(options.idempotencyTag
        ? { ifNoneExist: `_tag=${SYSTEM.idempotencyKey}|${options.idempotencyTag}` }
        : {}),
    },
  };
  return { ...bundle, entry: [...entries, entry] };
}

const AUTHOR = { coding: [{ system: PARTICIPANT_TYPE, code: 'author', display: 'Author' }] };

/**
 * The author: the person when the caller names one, else the client. With a person the client follows as the
 * transmitter (US Core ProvenanceTransmitter). A Practitioner acts on behalf of an organisation (US Core
 * provenance-1: onBehalfOf SHALL be present when agent.who is a Practitioner): the one that registered the client,
 * named by the client's id, since the token names no other.
 */
function agents(agent: ProvenanceAgent): Provenance['agent'] {
  const client = agentReference(agent);
  if (!agent.person) return [{ type: AUTHOR, who: client }];
  const who = { reference: agent.person.reference, display: agent.person.display ?? agent.person.reference };
  const practitioner = agent.person.reference.startsWith('Practitioner/');
  return [
    {
      type: AUTHOR,
      who,
      ...(practitioner
        ? {
            onBehalfOf: {
              type: 'Organization',
              ...(client.identifier ? { identifier: client.identifier } : {}),
              display: `the organisation of ${agent.display}`,
            },
          }
        : {}),
    },
    {
      type: { coding: [{ system: US_CORE_PARTICIPANT_TYPE, code: 'transmitter', display: 'Transmitter' }] },
      who: client,
    },
  ];
}
