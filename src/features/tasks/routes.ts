import { Type } from '@sinclair/typebox';
import type { App } from '../../http/types.js';
import { DateTime, Id, IdList, Task, TaskStateEnum, commonErrors } from '../../http/schemas.js';

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
        },
        { additionalProperties: false },
      ),
      response: { 200: IdList, ...commonErrors },
    },
    handler: (request) => app.services.tasks.list(request.params.serviceName, request.query),
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
      body: Type.Object(
        { reason: Type.String({ minLength: 1, maxLength: 255, description: 'Reason of task restart' }) },
        { additionalProperties: false },
      ),
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
      body: Type.Object(
        { executionDate: { ...DateTime, description: 'The new execution date' } },
        { additionalProperties: false },
      ),
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
