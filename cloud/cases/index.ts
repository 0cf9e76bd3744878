/**
 * Sensor cases (docs/domain.md#the-case), one file per concern: ids, history, the breach
 * upsert, alarms, the breach orchestration, people's workflow actions and the JSON mapping.
 */
export { caseId, nextCaseId } from './ids.ts';
export { appendHistory, SYSTEM_ACTOR, type HistoryInput, type HistoryRow } from './history.ts';
export { DEFAULT_WORKFLOW, WorkflowConfig, type BreachContext, type CaseChange, type CaseEnv, type WorkflowPolicy } from './policy.ts';
export { applyBreach } from './breach.ts';
export { alarmUnit, clearAlarm, linkAlarm, newAlarmId, raiseAlarm } from './alarms.ts';
export { breachEvents, recordBreach, recordClear, type AlarmChange, type BreachInput, type BreachOutcome } from './flow.ts';
export { actorOf, applyAction, visibleCase, type ActionBody, type ActionInput } from './actions.ts';
export { caseExtras } from './extras.ts';
export {
  alarmToJson, caseToJson, historyToJson, iso, parseList,
  type AlarmJson, type AlarmRow, type CaseExtras, type CaseJson, type CaseRow, type HistoryJson,
} from './json.ts';
export { CASE_STATES, type CaseAction, type CaseState } from '../workflow.ts';
