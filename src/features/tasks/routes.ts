import { Type } from '@sinclair/typebox';
import type { App } from '../../http/types.js';
import {
  DateTime,
  Id,
  IdList,
  Task,
  TaskStateEnum,
  commonErrors,
  ResetTaskStateBody,
  ChangeExecutionDateBody,
} from '../../http/schemas.js';

const Params = Type.Object({ serviceName: Type.String({ minLength: 1, maxLength: 63 }) });
const TaskParams = Type.Object({
  serviceName: Type.String({ minLength: 1, maxLength: 63 }),
  taskId: { ...Id, description: 'Task id' },
});
const tags = ['dedicatedCloud.task'];

export default async function taskRoutes(app: App) {
  app.get('/dedicatedCloud/:serviceName/task', {
    schema: {
      tags,
      summary: 'Tasks associated with this Dedicated Cloud',
      params: Params,
      querystring: Type.Object(
        {
          name: Type.Optional(Type.String({ maxLength: 100, description: 'Filter the value of name property (like)' })),
          state: Type.Optional(Type.Ref(TaskStateEnum, { description: 'Filter the value of state property (=)' })),
          executionDate: Type.Optional({ ...DateTime, description: 'Filter the value of executionDate property (>=)' }),
        },
        { additionalProperties: false },
      ),
      response: { 200: IdList, ...commonErrors },
    },
    handler: (request) => {
      const { name, state, executionDate } = request.query;
      return app.services.tasks.list(request.params.serviceName, {
        name,
        state,
        executionDateFrom: executionDate === undefined ? undefined : new Date(executionDate),
      });
    },
  });

  const Day = Type.String({ format: 'date', examples: ['2026-11-28'] });
  const Long = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
  app.get('/dedicatedCloud/:serviceName/globalTasks', {
    schema: {
      tags,
      summary: 'List filtered operations',
      description: 'Every task of the service, whatever it is about; each filter given must hold.',
      params: Params,
      querystring: Type.Object(
        {
          datacenterId: Type.Optional(Long),
          'endDate.from': Type.Optional({ ...Day, description: 'Filter the tasks by end date (>=)' }),
          'endDate.to': Type.Optional({ ...Day, description: 'Filter the tasks by end date (<=)' }),
          'executionDate.from': Type.Optional({ ...DateTime, description: 'Filter the tasks by execution date (>=)' }),
          'executionDate.to': Type.Optional({ ...DateTime, description: 'Filter the tasks by execution date (<=)' }),
          filerId: Type.Optional(Long),
          hostId: Type.Optional(Long),
          'lastModificationDate.from': Type.Optional({ ...DateTime, description: '(>=)' }),
          'lastModificationDate.to': Type.Optional({ ...DateTime, description: '(<=)' }),
          name: Type.Optional(Type.String({ maxLength: 100, description: 'Filter the tasks by name' })),
          networkAccessId: Type.Optional(Long),
          orderId: Type.Optional(Long),
          parentTaskId: Type.Optional(Long),
          state: Type.Optional(Type.Array(Type.Ref(TaskStateEnum), { maxItems: 11, description: 'Filter the tasks by state' })),
          userId: Type.Optional(Long),
          vlanId: Type.Optional(Long),
        },
        { additionalProperties: false },
      ),
      response: { 200: IdList, ...commonErrors },
    },
    handler: (request) => {
      const q = request.query;
      const at = (s: string | undefined) => (s === undefined ? undefined : new Date(s));
      // A date filter covers its whole (UTC) day: `endDate.to=2026-11-28` includes that day's evening.
      const dayEnd = (s: string | undefined) =>
        s === undefined ? undefined : new Date(Date.parse(`${s}T00:00:00Z`) + 86_400_000 - 1);
      return app.services.tasks.list(request.params.serviceName, {
        name: q.name,
        states: q.state,
        userId: q.userId,
        networkAccessId: q.networkAccessId,
        datacenterId: q.datacenterId,
        filerId: q.filerId,
        hostId: q.hostId,
        orderId: q.orderId,
        parentTaskId: q.parentTaskId,
        vlanId: q.vlanId,
        executionDateFrom: at(q['executionDate.from']),
        executionDateTo: at(q['executionDate.to']),
        endDateFrom: q['endDate.from'] === undefined ? undefined : new Date(`${q['endDate.from']}T00:00:00Z`),
        endDateTo: dayEnd(q['endDate.to']),
        lastModificationDateFrom: at(q['lastModificationDate.from']),
        lastModificationDateTo: at(q['lastModificationDate.to']),
      });
    },
  });

  app.get('/dedicatedCloud/:serviceName/task/:taskId', {
    schema: {
      tags,
      summary: 'Get this object properties',
      params: TaskParams,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) => app.services.tasks.get(request.params.serviceName, request.params.taskId),
  });

  app.post('/dedicatedCloud/:serviceName/task/:taskId/resetTaskState', {
    schema: {
      tags,
      summary: 'Relaunch operation currently in error state',
      params: TaskParams,
      body: ResetTaskStateBody,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      app.services.tasks.resetTaskState(request.params.serviceName, request.params.taskId, request.body.reason),
  });

  app.post('/dedicatedCloud/:serviceName/task/:taskId/changeMaintenanceExecutionDate', {
    schema: {
      tags,
      summary: 'Change the execution date of a maintenance task',
      params: TaskParams,
      body: ChangeExecutionDateBody,
      response: { 200: Type.Ref(Task), ...commonErrors },
    },
    handler: (request) =>
      app.services.tasks.changeMaintenanceExecutionDate(
        request.params.serviceName,
        request.params.taskId,
        request.body.executionDate,
      ),
  });
}
