import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TASK_STATES } from '../db/types.js';

/**
 * Shared atoms and OVH's named models. Every schema with an `$id` is registered once on the app and referenced with
 * `Type.Ref`, so the OpenAPI document carries them as named components.
 */
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** A string enum as OpenAPI and AJV know it best: `{type: string, enum: [...]}`. */
export const StringEnum = <const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

export const DateTime = Type.String({ format: 'date-time', examples: ['2026-11-28T10:15:00+00:00'] });
export const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
export const IdList = Type.Array(Type.Integer(), { description: 'Ids of the objects' });

export const OvhError = Type.Object(
  {
    class: Type.String({ examples: ['Client::NotFound'] }),
    message: Type.String({ examples: ['This service does not exist'] }),
    errorCode: Type.Optional(
      Type.String({ description: 'Authentication errors: INVALID_SIGNATURE, INVALID_KEY, …', examples: ['INVALID_SIGNATURE'] }),
    ),
    httpCode: Type.Optional(Type.String({ examples: ['400 Bad Request'] })),
  },
  { $id: 'ovh.Error', title: 'ovh.Error', description: 'An error, as OVH reports it' },
);

export const TaskStateEnum = StringEnum(TASK_STATES, {
  $id: 'dedicatedCloud.TaskStateEnum',
  title: 'dedicatedCloud.TaskStateEnum',
  description: 'All states a Task can be in',
});

export const Task = Type.Object(
  {
    createdBy: Nullable(Type.String({ description: 'Creator of the task' })),
    createdFrom: Nullable(Type.String({ description: 'Origin of the task' })),
    datacenterId: Nullable(Type.Integer({ description: 'datacenterId of the associated dedicatedCloud.Datacenter object' })),
    description: Nullable(Type.String({ description: 'Current progress description' })),
    endDate: Nullable({ ...DateTime, description: 'Task end date' }),
    executionDate: { ...DateTime, description: 'Task execution date' },
    filerId: Nullable(Type.Integer({ description: 'filerId of the associated dedicatedCloud.Filer object' })),
    hostId: Nullable(Type.Integer({ description: 'hostId of the associated dedicatedCloud.Host object' })),
    lastModificationDate: Nullable({ ...DateTime, description: 'Task last modification date' }),
    maintenanceDateFrom: Nullable({ ...DateTime, description: 'Maintenance task min allowed execution date' }),
    maintenanceDateTo: Nullable({ ...DateTime, description: 'Maintenance task max allowed execution date' }),
    name: Type.String({ description: 'Task name' }),
    network: Nullable(Type.String({ description: 'network of the associated dedicatedCloud.Ip object' })),
    networkAccessId: Nullable(Type.Integer({ description: 'networkAccessId of the associated dedicatedCloud.AllowedNetwork' })),
    orderId: Nullable(Type.Integer({ description: 'orderId of the associated billing.Order object' })),
    parentTaskId: Nullable(Type.Integer({ description: 'taskId of the parent Task' })),
    progress: Type.Integer({ minimum: 0, maximum: 100, description: 'Current progress' }),
    state: Type.Ref(TaskStateEnum),
    taskId: Type.Integer({ description: 'Task id' }),
    type: Type.String({ description: 'Task type' }),
    userId: Nullable(Type.Integer({ description: 'userId of the associated dedicatedCloud.User object' })),
    vlanId: Nullable(Type.Integer({ description: 'vlanId of the parent Vlan' })),
  },
  { $id: 'dedicatedCloud.Task', title: 'dedicatedCloud.Task', description: 'Operation', additionalProperties: false },
);
export type TaskDto = Static<typeof Task>;

export const ServiceNameParams = Type.Object({
  serviceName: Type.String({ minLength: 1, maxLength: 63, description: 'Domain of the service' }),
});

/** Responses every authenticated route may give besides its own. */
export const commonErrors = {
  400: Type.Ref(OvhError),
  404: Type.Ref(OvhError),
};

export const sharedSchemas: TSchema[] = [OvhError, TaskStateEnum, Task];

/** The body of OVH's `…/task/{taskId}/resetTaskState`, wherever a task is reached. */
export const ResetTaskStateBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 255, description: 'Reason of task restart' }) },
  { additionalProperties: false },
);

/** The body of OVH's `…/task/{taskId}/changeMaintenanceExecutionDate`, wherever a task is reached. */
export const ChangeExecutionDateBody = Type.Object(
  { executionDate: { ...DateTime, description: 'The new execution date' } },
  { additionalProperties: false },
);
