// The package's main entry (`quantlab`): the worker-backed client API, its types and its errors.
export { createLab, Lab } from './lab';
export type { CoreInfo, EvalProtocolOptions, ExportResult, GenerateOptions, HistogramOptions, LabOptions, ModelSource, Recipe, ScanOptions, TaskSuiteOption, TensorViewOptions } from './lab';
export type { CallOptions } from './calls';
export { TokenStream, type GenerateOutcome } from './tokens';
export type { ProgressFn } from '../client';
export { CancelledError, DownloadError, FormatChoiceError, GpuUnavailableError, LabError, ModelFormatError, RuntimeError, StorageQuotaError, WorkerCrashError, type ErrorKind } from '../errors';
export type {
  Activations,
  CalibSource,
  Device,
  DeviceChoice,
  DeviceStatus,
  ErrorMetrics,
  EvalKvCache,
  EvalProtocol,
  ExportManifest,
  HfExport,
  HfLayout,
  FormatInfo,
  FormatResult,
  GenerationSide,
  HistogramResult,
  KvCache,
  LoadedModel,
  MethodInfo,
  MethodName,
  ModelHeader,
  Phase,
  PresetInfo,
  QuantizeResult,
  QuantManifest,
  QuantReport,
  RecipeAdvice,
  RecipeBudget,
  RecipeRun,
  ScanReport,
  ScanUnit,
  Scope,
  StepEvent,
  SuiteResult,
  TaskChecks,
  TaskResult,
  TensorRow,
  TensorView,
  TokenEvent,
  TypeMix,
  UnitRow,
} from '../messages';
