package query

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/activitybi/activitybi/internal/warehouse"
)

func BenchmarkScratchSave(b *testing.B) {
	db := openWarehouse(b)
	ctx := context.Background()
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rows := make([]warehouse.TicketRow, n)
			for i := range rows {
				rows[i] = warehouse.TicketRow{TicketID: fmt.Sprintf("qt_%d_%d", n, i), CustomerID: "c", QueryHash: "q_x", Template: "t",
					Request: []byte(`{"template":"t"}`), State: "running", CreatedAt: time.Now(), StartedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
			}
			cpu0 := processCPU()
			for b.Loop() {
				if err := db.SaveTickets(ctx, rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N)/1000, "cpu-ms/op")
		})
	}
}
