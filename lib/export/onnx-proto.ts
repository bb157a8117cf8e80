/**
 * The part of the ONNX file format (onnx/onnx.proto, proto2) that torchts writes and reads back:
 * a model, its graph, nodes with attributes, tensors with raw little-endian data, and the typed,
 * shaped values of the graph's inputs and outputs. Field numbers are the specification's; a
 * field left out here is one torchts never sets (a reader skips it as an unknown field).
 */
import * as protobuf from 'protobufjs';

/** TensorProto.DataType values torchts uses. */
export const ONNX_DATA_TYPE = Object.freeze({ FLOAT: 1, UINT8: 2, INT64: 7 });

/** AttributeProto.AttributeType values torchts uses. */
export const ONNX_ATTRIBUTE_TYPE = Object.freeze({ FLOAT: 1, INT: 2, STRING: 3, INTS: 7 });

/** One dimension of a value's shape: a fixed size or a symbolic name. */
export interface OnnxDimension {
  dimValue?: number;
  dimParam?: string;
}

/** A graph input or output: its name, element type and shape. */
export interface OnnxValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: OnnxDimension[] } } };
}

/** A node's named attribute: `type` says which one of the value fields is set. */
export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  ints?: number[];
}

/** One operation of the graph; inputs and outputs are value names. */
export interface OnnxNode {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  attribute: OnnxAttribute[];
}

/** A constant of the graph (an initializer), its values as raw little-endian bytes. */
export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

/** The computation: nodes in topological order, constants, and the typed inputs and outputs. */
export interface OnnxGraph {
  name: string;
  node: OnnxNode[];
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
}

/** A metadata entry (StringStringEntryProto). */
export interface OnnxStringEntry {
  key: string;
  value: string;
}

/** The file's top-level message (ModelProto). */
export interface OnnxModel {
  irVersion: number;
  opsetImport: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: OnnxGraph;
  metadataProps: OnnxStringEntry[];
}

const optional = (type: string, id: number) => ({ type, id });
const repeated = (type: string, id: number) => ({ type, id, rule: 'repeated' });

/**
 * A message of the proto2 schema. protobufjs reads a JSON type as proto3 unless told, and proto3
 * would drop an attribute's `i: 0` (a zero is its default) and pack repeated int64 (dims, ints);
 * onnx.proto is proto2, where a set field is always written and packing is opt-in.
 */
function message(fields: Record<string, object>, nested?: Record<string, object>, oneofs?: Record<string, object>): object {
  return { edition: 'proto2', fields, ...(nested ? { nested } : {}), ...(oneofs ? { oneofs } : {}) };
}

/** The schema, as protobufjs's JSON descriptor of package `onnx`. */
const ONNX_SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: message({
          irVersion: optional('int64', 1),
          producerName: optional('string', 2),
          producerVersion: optional('string', 3),
          domain: optional('string', 4),
          modelVersion: optional('int64', 5),
          docString: optional('string', 6),
          graph: optional('GraphProto', 7),
          opsetImport: repeated('OperatorSetIdProto', 8),
          metadataProps: repeated('StringStringEntryProto', 14),
        }),
        OperatorSetIdProto: message({ domain: optional('string', 1), version: optional('int64', 2) }),
        StringStringEntryProto: message({ key: optional('string', 1), value: optional('string', 2) }),
        GraphProto: message({
          node: repeated('NodeProto', 1),
          name: optional('string', 2),
          initializer: repeated('TensorProto', 5),
          docString: optional('string', 10),
          input: repeated('ValueInfoProto', 11),
          output: repeated('ValueInfoProto', 12),
          valueInfo: repeated('ValueInfoProto', 13),
        }),
        NodeProto: message({
          input: repeated('string', 1),
          output: repeated('string', 2),
          name: optional('string', 3),
          opType: optional('string', 4),
          attribute: repeated('AttributeProto', 5),
          docString: optional('string', 6),
          domain: optional('string', 7),
        }),
        AttributeProto: message({
          name: optional('string', 1),
          f: optional('float', 2),
          i: optional('int64', 3),
          s: optional('bytes', 4),
          t: optional('TensorProto', 5),
          floats: repeated('float', 7),
          ints: repeated('int64', 8),
          strings: repeated('bytes', 9),
          docString: optional('string', 13),
          type: optional('int32', 20),
        }),
        TensorProto: message({
          dims: repeated('int64', 1),
          dataType: optional('int32', 2),
          name: optional('string', 8),
          rawData: optional('bytes', 9),
          docString: optional('string', 12),
        }),
        ValueInfoProto: message({ name: optional('string', 1), type: optional('TypeProto', 2), docString: optional('string', 3) }),
        TypeProto: message(
          { tensorType: optional('Tensor', 1), denotation: optional('string', 6) },
          { Tensor: message({ elemType: optional('int32', 1), shape: optional('TensorShapeProto', 2) }) },
          { value: { oneof: ['tensorType'] } },
        ),
        TensorShapeProto: message(
          { dim: repeated('Dimension', 1) },
          {
            Dimension: message(
              { dimValue: optional('int64', 1), dimParam: optional('string', 2), denotation: optional('string', 3) },
              undefined,
              { value: { oneof: ['dimValue', 'dimParam'] } },
            ),
          },
        ),
      },
    },
  },
};

const root = protobuf.Root.fromJSON(ONNX_SCHEMA);
const modelType = root.lookupType('onnx.ModelProto');

/** Serializes a model to the bytes of a `.onnx` file. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const problem = modelType.verify(model);
  if (problem) throw new Error(`exportOnnx: internal error, the ONNX model does not fit the schema: ${problem}`);
  return modelType.encode(modelType.fromObject(model)).finish();
}

/** Reads a `.onnx` file's bytes back (int64 fields as numbers, bytes as Uint8Array; only the fields above). */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModel {
  return modelType.toObject(modelType.decode(bytes), { longs: Number, arrays: true }) as OnnxModel;
}
