package grpcfront

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tokenwise/tokenwise/authz/request"
)

// protoValue renders a message as a Rego value the way OPA-Envoy does today:
// JSON (lowerCamelCase) field names, populated fields only, integers as
// numbers, bytes as standard base64. Well-known types render as protojson
// renders them (Timestamp and Duration as strings, Struct as a JSON object,
// wrappers as their value), so policies written for either form keep working.
//
// It walks the message directly into ast terms: no JSON round trip.
func protoValue(m protoreflect.Message) ast.Value {
	if v, ok := wellKnownValue(m); ok {
		return v
	}
	obj := ast.NewObjectWithCapacity(m.Descriptor().Fields().Len())
	// The request headers are the largest part of a Check; reading the Go
	// map directly skips protoreflect's per-entry boxing.
	httpReq, _ := m.Interface().(*authv3.AttributeContext_HttpRequest)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		var value ast.Value
		if httpReq != nil && fd.Number() == headersField {
			value = stringMapValue(httpReq.GetHeaders())
		} else {
			value = fieldValue(fd, v)
		}
		obj.Insert(ast.InternedTerm(fd.JSONName()), ast.NewTerm(value))
		return true
	})
	return obj
}

// headersField is the field number of AttributeContext.HttpRequest.headers.
const headersField = 3

func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) ast.Value {
	switch {
	case fd.IsMap():
		obj := ast.NewObjectWithCapacity(v.Map().Len())
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			// Proto map keys are strings or integers; JSON keys are strings.
			obj.Insert(ast.InternedTerm(k.String()), ast.NewTerm(singularValue(fd.MapValue(), mv)))
			return true
		})
		return obj
	case fd.IsList():
		list := v.List()
		terms := make([]*ast.Term, list.Len())
		for i := range terms {
			terms[i] = ast.NewTerm(singularValue(fd, list.Get(i)))
		}
		return ast.NewArray(terms...)
	default:
		return singularValue(fd, v)
	}
}

func singularValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) ast.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return ast.Boolean(v.Bool())
	case protoreflect.StringKind:
		return ast.String(v.String())
	case protoreflect.BytesKind:
		return ast.String(base64.StdEncoding.EncodeToString(v.Bytes()))
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return ast.String(ev.Name())
		}
		return ast.Number(strconv.Itoa(int(v.Enum())))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return ast.Number(strconv.FormatInt(v.Int(), 10))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return ast.Number(strconv.FormatUint(v.Uint(), 10))
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return floatValue(v.Float())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return protoValue(v.Message())
	}
	return ast.NullValue
}

// floatValue follows protojson: NaN and infinities are strings.
func floatValue(f float64) ast.Value {
	switch {
	case math.IsNaN(f):
		return ast.String("NaN")
	case math.IsInf(f, 1):
		return ast.String("Infinity")
	case math.IsInf(f, -1):
		return ast.String("-Infinity")
	}
	return ast.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

func wellKnownValue(m protoreflect.Message) (ast.Value, bool) {
	switch x := m.Interface().(type) {
	case *structpb.Struct:
		return structValue(x), true
	case *structpb.Value:
		return jsonValue(x), true
	case *structpb.ListValue:
		return listValue(x), true
	case *timestamppb.Timestamp:
		return ast.String(request.TimeText(x.AsTime())), true
	case *durationpb.Duration:
		return ast.String(durationText(x.GetSeconds(), x.GetNanos())), true
	}
	if isWrapper(m.Descriptor().FullName()) {
		fd := m.Descriptor().Fields().ByName("value")
		return singularValue(fd, m.Get(fd)), true
	}
	return nil, false
}

func isWrapper(name protoreflect.FullName) bool {
	switch name {
	case "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
		"google.protobuf.Int32Value", "google.protobuf.Int64Value", "google.protobuf.UInt32Value",
		"google.protobuf.UInt64Value", "google.protobuf.FloatValue", "google.protobuf.DoubleValue":
		return true
	}
	return false
}

func structValue(s *structpb.Struct) ast.Value {
	obj := ast.NewObjectWithCapacity(len(s.GetFields()))
	for k, v := range s.GetFields() {
		obj.Insert(ast.InternedTerm(k), ast.NewTerm(jsonValue(v)))
	}
	return obj
}

func listValue(l *structpb.ListValue) ast.Value {
	terms := make([]*ast.Term, len(l.GetValues()))
	for i, v := range l.GetValues() {
		terms[i] = ast.NewTerm(jsonValue(v))
	}
	return ast.NewArray(terms...)
}

func jsonValue(v *structpb.Value) ast.Value {
	switch k := v.GetKind().(type) {
	case *structpb.Value_BoolValue:
		return ast.Boolean(k.BoolValue)
	case *structpb.Value_NumberValue:
		return floatValue(k.NumberValue)
	case *structpb.Value_StringValue:
		return ast.String(k.StringValue)
	case *structpb.Value_StructValue:
		return structValue(k.StructValue)
	case *structpb.Value_ListValue:
		return listValue(k.ListValue)
	}
	return ast.NullValue
}

// durationText formats a Duration as protojson does: seconds with 0, 3, 6
// or 9 fractional digits and an "s".
func durationText(secs int64, nanos int32) string {
	sign := ""
	if secs < 0 || nanos < 0 {
		sign, secs, nanos = "-", -secs, -nanos
	}
	frac := ""
	switch {
	case nanos == 0:
	case nanos%1e6 == 0:
		frac = fmt.Sprintf(".%03d", nanos/1e6)
	case nanos%1e3 == 0:
		frac = fmt.Sprintf(".%06d", nanos/1e3)
	default:
		frac = fmt.Sprintf(".%09d", nanos)
	}
	return sign + strconv.FormatInt(secs, 10) + frac + "s"
}
