package grpcfront

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestWellKnownTypesMatchProtojson: where CheckRequest may carry well-known
// types, the direct builder renders them as protojson does.
func TestWellKnownTypesMatchProtojson(t *testing.T) {
	st, _ := structpb.NewStruct(map[string]any{"a": 1.5, "b": []any{"x", true, nil}, "c": map[string]any{}})
	msgs := []proto.Message{
		durationpb.New(1500 * time.Millisecond),
		durationpb.New(-time.Microsecond),
		durationpb.New(3 * time.Second),
		durationpb.New(time.Nanosecond),
		timestamppb.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)),
		timestamppb.New(time.Date(2024, 5, 1, 12, 0, 0, 123456000, time.UTC)),
		timestamppb.New(time.Date(2024, 5, 1, 12, 0, 0, 1, time.FixedZone("x", 3600))),
		wrapperspb.Bool(true),
		wrapperspb.String("s"),
		wrapperspb.Bytes([]byte{0xff, 0x00}),
		wrapperspb.Double(math.Inf(-1)),
		wrapperspb.UInt32(7),
		st,
		structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{structpb.NewNumberValue(2)}}),
	}
	for _, m := range msgs {
		bs, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var want any
		if err := json.Unmarshal(bs, &want); err != nil {
			t.Fatal(err)
		}
		x, err := ast.JSON(protoValue(m.ProtoReflect()))
		if err != nil {
			t.Fatal(err)
		}
		if got := roundTrip(t, x); !reflect.DeepEqual(got, want) {
			t.Errorf("%T %s: got %#v, want %#v", m, bs, got, want)
		}
	}
}

// roundTrip normalizes a value through encoding/json (numbers become float64).
func roundTrip(t *testing.T, x any) any {
	t.Helper()
	bs, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(bs, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
