// The care plan use cases, one face: what the routes call. Each use case lives in its own module (create, edit,
// queries) over the repository (all FHIR traffic) and the mapping; access rules are in access.ts.

import { randomUUID } from 'node:crypto';
import type { Bundle } from 'fhir/r4.js';
import type { FhirGateway } from '../fhir/client/gateway.js';
import { cloneJson } from '../fhir/mapping/carry.js';
import type { UsCoreVersion } from '../fhir/mapping/codes.js';
import type { ToFhirOptions } from '../fhir/mapping/to-fhir.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import { DomainError } from '../model/errors.js';
import type { Participant } from './access.js';
import {
  type AgreementInput,
  agreementWrite,
  type ItemList,
  type ItemOf,
  type NoteInput,
  type WhatMattersInput,
  withAgreement,
  withItem,
  withItemChanged,
  withNote,
  withoutItem,
  withWhatMatters,
} from './contributions.js';
import { createPlan } from './create.js';
import type { UseCaseDeps } from './deps.js';
import { applyEdit, type EditKind } from './edit.js';
import { PlanFhir } from './plan-fhir.js';
import { planChanges, planHistory, readPlan, searchPlans } from './queries.js';
import { PlanRepository } from './repository.js';
import type {
  ChangeItem,
  CreateContext,
  EditContext,
  EditResult,
  HistoryItem,
  Page,
  PlanContext,
  PlanSchemaCheck,
  SearchFilters,
  StoredPlan,
} from './types.js';

export interface CarePlansOptions {
  newUuid?: () => string;
  /** The change feed holds back changes younger than this (ms). */
  settleMs?: number;
  /** Checks a plan changed by an edit against the API schema. */
  checkSchema?: PlanSchemaCheck;
  /** The US Core version of every profile claimed (US_CORE_VERSION). */
  usCoreVersion?: UsCoreVersion;
}

export class CarePlans {
  /** The mapping every use case maps and validates through. */
  readonly mapping: PlanFhir;
  private readonly deps: UseCaseDeps;

  constructor(gateway: FhirGateway, options: CarePlansOptions = {}) {
    const newUuid = options.newUuid ?? randomUUID;
    this.mapping = new PlanFhir(gateway.baseUrl, newUuid, options.usCoreVersion);
    this.deps = {
      repository: new PlanRepository(gateway, options.usCoreVersion),
      mapping: this.mapping,
      newUuid,
      settleMs: options.settleMs ?? 0,
      checkSchema: options.checkSchema ?? (() => []),
    };
  }

  /** A plan's transaction Bundle, every resource validated. Nothing is sent. */
  toFhir(plan: SharedCarePlan, options: Omit<ToFhirOptions, 'newUuid'> = {}): Bundle {
    return this.deps.mapping.toFhir(plan, options);
  }

  /** FHIR (a CarePlan with contained resources, or a Bundle), validated, as a plan. Nothing is sent. */
  fromFhir(input: unknown, carePlanId?: string): SharedCarePlan {
    return this.deps.mapping.fromFhir(input, carePlanId);
  }

  create(plan: SharedCarePlan, context: CreateContext): Promise<StoredPlan & { replayed: boolean }> {
    return createPlan(this.deps, plan, context);
  }

  read(id: string, context: PlanContext): Promise<StoredPlan> {
    return readPlan(this.deps, id, context);
  }

  /** Replaces a plan: `next` is the plan as read, edited; ids and version are checked. */
  replace(
    id: string,
    next: SharedCarePlan,
    expected: string[] | undefined,
    context: EditContext,
  ): Promise<EditResult> {
    return applyEdit(this.deps, id, expected, context, () => next);
  }

  /**
   * Read, change, write: the small edits (goals, activities, ending a plan) and contributions all go through here.
   * `kind` names the write in the access table (access.ts WHO_MAY); an additive one needs no expected version.
   */
  edit(
    id: string,
    expected: string[] | undefined,
    change: (plan: SharedCarePlan, participant: Participant) => SharedCarePlan,
    context: EditContext,
    kind: EditKind = { write: 'replace' },
  ): Promise<EditResult> {
    return applyEdit(
      this.deps,
      id,
      expected,
      context,
      (current, participant) => {
        const changed = change(cloneJson(current.plan), participant);
        const errors = this.deps.checkSchema(changed);
        if (errors.length) {
          throw new DomainError('unprocessable', 'after this change the plan would not be valid', { errors });
        }
        return changed;
      },
      kind,
    );
  }

  /** The caller's agreement with a goal (or, by a professional, what a named person said in person). */
  agree(
    id: string,
    goal: string,
    input: AgreementInput,
    expected: string[] | undefined,
    context: EditContext,
  ) {
    const write = agreementWrite(input, context.caller?.person);
    return this.edit(id, expected, (plan, p) => withAgreement(plan, goal, input, p), context, {
      write,
      additive: true,
    });
  }

  /** A note on a goal's progress, in the caller's words. */
  addNote(id: string, goal: string, input: NoteInput, expected: string[] | undefined, context: EditContext) {
    return this.edit(id, expected, (plan, p) => withNote(plan, goal, input, p), context, {
      write: 'note-add',
      additive: true,
    });
  }

  addItem<L extends ItemList>(
    id: string,
    list: L,
    item: ItemOf<L>,
    expected: string[] | undefined,
    context: EditContext,
  ) {
    return this.edit(id, expected, (plan, p) => withItem(plan, list, item, p), context, {
      write: 'item-add',
      additive: true,
    });
  }

  changeItem<L extends ItemList>(
    id: string,
    list: L,
    itemId: string,
    changes: Partial<ItemOf<L>>,
    expected: string[] | undefined,
    context: EditContext,
  ) {
    return this.edit(id, expected, (plan) => withItemChanged(plan, list, itemId, changes), context, {
      write: 'item-change',
    });
  }

  removeItem(
    id: string,
    list: ItemList,
    itemId: string,
    expected: string[] | undefined,
    context: EditContext,
  ) {
    return this.edit(id, expected, (plan) => withoutItem(plan, list, itemId), context, {
      write: 'item-remove',
    });
  }

  setWhatMatters(id: string, input: WhatMattersInput, expected: string[] | undefined, context: EditContext) {
    return this.edit(id, expected, (plan, p) => withWhatMatters(plan, input, p), context, {
      write: 'what-matters-set',
      additive: true,
    });
  }

  search(
    filters: SearchFilters,
    limit: number,
    cursor: string | undefined,
    context: PlanContext,
  ): Promise<Page<StoredPlan>> {
    return searchPlans(this.deps, filters, limit, cursor, context);
  }

  changes(
    since: string | undefined,
    limit: number,
    context: PlanContext,
    patient?: string,
  ): Promise<Page<ChangeItem>> {
    return planChanges(this.deps, since, limit, context, patient);
  }

  history(id: string, context: PlanContext): Promise<HistoryItem[]> {
    return planHistory(this.deps, id, context);
  }
}
