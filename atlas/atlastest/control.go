package atlastest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// controlPrefix is where the control endpoints live. They let a test or
// benchmark in another process drive an emulator run by cmd/atlas-emulator.
const controlPrefix = "/_emulator/"

// serveControl serves the control endpoints listed in the package
// documentation. They are unauthenticated and not counted in Stats;
// ServeHTTP does not call it when EmulatorConfig.DisableControl is set.
func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	route := r.Method + " " + strings.TrimPrefix(r.URL.Path, controlPrefix)
	switch route {
	case "GET stats":
		writeControl(w, http.StatusOK, e.Stats())
	case "POST reset-stats":
		e.ResetStats()
		writeControl(w, http.StatusOK, e.Stats())
	case "GET calls":
		writeControl(w, http.StatusOK, e.Calls())
	case "GET requests":
		writeControl(w, http.StatusOK, e.Requests())
	case "POST faults":
		var req struct {
			Fault
			RetryAfter string `json:"retryAfter"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			controlError(w, "faults: want a JSON Fault: "+err.Error())
			return
		}
		if req.RetryAfter != "" {
			d, err := time.ParseDuration(req.RetryAfter)
			if err != nil {
				controlError(w, "faults: retryAfter: "+err.Error())
				return
			}
			req.Fault.RetryAfter = d
		}
		e.InjectFault(req.Fault)
		writeControl(w, http.StatusOK, map[string]string{"status": "queued"})
	case "DELETE faults":
		e.ClearFaults()
		writeControl(w, http.StatusOK, map[string]string{"status": "cleared"})
	case "POST latency":
		d, err := time.ParseDuration(q.Get("d"))
		if err != nil {
			controlError(w, "latency: d: "+err.Error())
			return
		}
		e.SetLatency(d)
		writeControl(w, http.StatusOK, map[string]string{"latency": d.String()})
	case "POST fault-rate":
		rate, err := strconv.ParseFloat(q.Get("rate"), 64)
		if err != nil || rate < 0 || rate > 1 {
			controlError(w, "fault-rate: rate must be a number from 0 to 1")
			return
		}
		var codes []int
		for s := range strings.SplitSeq(q.Get("statuses"), ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			c, err := strconv.Atoi(s)
			if err != nil || c < 100 || c > 599 {
				controlError(w, "fault-rate: statuses must be HTTP status codes")
				return
			}
			codes = append(codes, c)
		}
		e.SetFaultRate(rate, codes...)
		writeControl(w, http.StatusOK, map[string]any{"rate": rate, "statuses": codes})
	case "POST expire-nonces":
		e.ExpireNonces()
		writeControl(w, http.StatusOK, map[string]string{"status": "expired"})
	case "POST groups":
		e.AddProject(q.Get("id"), q.Get("name"))
		writeControl(w, http.StatusOK, map[string]string{"id": q.Get("id"), "name": q.Get("name")})
	case "POST clusters", "DELETE clusters":
		group, c, ok := parseClusterControl(q)
		if !ok {
			controlError(w, "want ?group=<id>&name=<cluster>&provider=NONE|AWS|AZURE|GCP&state=IDLE|…")
			return
		}
		if r.Method == http.MethodDelete {
			e.RemoveCluster(group, c.Name)
		} else {
			e.SetCluster(group, c)
		}
		writeControl(w, http.StatusOK, map[string]any{"group": group, "cluster": c})
	case "POST roles":
		d, err := time.ParseDuration(q.Get("usableAfter"))
		if err != nil || q.Get("id") == "" {
			controlError(w, "want ?id=<roleId>&usableAfter=<duration>")
			return
		}
		e.RoleUsableAfter(q.Get("id"), d)
		writeControl(w, http.StatusOK, map[string]string{"id": q.Get("id"), "usableAfter": d.String()})
	case "POST key-valid", "POST provider-in-use":
		group, provider := q.Get("group"), q.Get("provider")
		flag := "valid"
		if route == "POST provider-in-use" {
			flag = "inUse"
		}
		v, err := strconv.ParseBool(q.Get(flag))
		if err != nil || !knownProvider(provider) {
			controlError(w, "want ?group=<id>&provider=awsKms|azureKeyVault|googleCloudKms&"+flag+"=true|false")
			return
		}
		if flag == "valid" {
			e.SetKeyValid(group, provider, v)
		} else {
			e.SetProviderInUse(group, provider, v)
		}
		writeControl(w, http.StatusOK, map[string]any{"group": group, "provider": provider, flag: v})
	case "GET state":
		writeControl(w, http.StatusOK, e.State(q.Get("group")))
	case "POST private-endpoints/approve", "POST private-endpoints/fail":
		e.serveEndpointControl(w, r, strings.TrimPrefix(route, "POST private-endpoints/"))
	default:
		w.Header().Set("Content-Type", MediaTypeJSON)
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"unknown control endpoint"}` + "\n"))
	}
}

func writeControl(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", MediaTypeJSON)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func controlError(w http.ResponseWriter, msg string) {
	writeControl(w, http.StatusBadRequest, map[string]string{"error": msg})
}
