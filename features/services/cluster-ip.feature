Feature: Connections to a Service's cluster IP reach its ready pods
  kube-proxy on every node keeps the node's rules in step with the Service's EndpointSlices:
  a connection from a pod to the cluster IP goes to one of the Service's ready pods, chosen at
  random (or the same one for a client, with ClientIP session affinity); a pod that is not
  ready gets no new connections; a Service without endpoints refuses them.

  The clients find the Service through the variables the kubelet gives every container for the
  Services of its namespace ($BACKEND_SERVICE_HOST, $BACKEND_SERVICE_PORT), so the Service is
  created before them.

  Background:
    Given a cluster with 2 nodes
    And I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: backend-a
        labels: {app: backend}
      spec:
        containers:
        - name: app
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["netexec", "--http-port=8080"]
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: backend-b
        labels: {app: backend}
      spec:
        containers:
        - name: app
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["netexec", "--http-port=8080"]
      """

  Scenario: Connections to the cluster IP are spread over the ready pods
    When I apply:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: backend
      spec:
        selector: {app: backend}
        ports:
        - port: 80
          targetPort: 8080
      """
    Then within 30 seconds service backend has 2 ready endpoints
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: client
      spec:
        restartPolicy: Never
        containers:
        - name: client
          image: busybox:1.36
          command:
          - sh
          - -c
          - |
            # kube-proxy programs the node a moment after the endpoints change: wait for it.
            until wget -q -T 2 -O /dev/null http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT/hostname; do sleep 1; done
            i=0
            while [ $i -lt 30 ]; do
              wget -q -T 5 -O - http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT/hostname >> /tmp/seen
              echo >> /tmp/seen
              i=$((i+1))
            done
            cat /tmp/seen
            echo "distinct backends: $(grep backend /tmp/seen | sort -u | wc -l)"
      """
    Then within 60 seconds pod client is Succeeded
    And the logs of container client of pod client contain "backend-a"
    And the logs of container client of pod client contain "backend-b"
    And the logs of container client of pod client contain "distinct backends: 2"

  Scenario: With ClientIP session affinity a client keeps talking to one pod
    When I apply:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: backend
      spec:
        selector: {app: backend}
        sessionAffinity: ClientIP
        ports:
        - port: 80
          targetPort: 8080
      """
    Then within 30 seconds service backend has 2 ready endpoints
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: client
      spec:
        restartPolicy: Never
        containers:
        - name: client
          image: busybox:1.36
          command:
          - sh
          - -c
          - |
            # kube-proxy programs the node a moment after the endpoints change: wait for it.
            until wget -q -T 2 -O /dev/null http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT/hostname; do sleep 1; done
            i=0
            while [ $i -lt 30 ]; do
              wget -q -T 5 -O - http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT/hostname >> /tmp/seen
              echo >> /tmp/seen
              i=$((i+1))
            done
            echo "distinct backends: $(grep backend /tmp/seen | sort -u | wc -l)"
      """
    Then within 60 seconds pod client is Succeeded
    And the logs of container client of pod client contain "distinct backends: 1"

  Scenario: A pod that is not ready gets no new connections
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: backend-c
        labels: {app: backend}
      spec:
        containers:
        - name: app
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["netexec", "--http-port=8080"]
          readinessProbe:
            exec:
              command: ["cat", "/tmp/never-written"]
            periodSeconds: 2
      ---
      apiVersion: v1
      kind: Service
      metadata:
        name: backend
      spec:
        selector: {app: backend}
        ports:
        - port: 80
          targetPort: 8080
      """
    Then within 30 seconds service backend has 2 ready endpoints
    And within 30 seconds service backend has 1 not-ready endpoint
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: client
      spec:
        restartPolicy: Never
        containers:
        - name: client
          image: busybox:1.36
          command:
          - sh
          - -c
          - |
            # kube-proxy programs the node a moment after the endpoints change: wait for it.
            until wget -q -T 2 -O /dev/null http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT/hostname; do sleep 1; done
            i=0
            while [ $i -lt 40 ]; do
              wget -q -T 5 -O - http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT/hostname >> /tmp/seen
              echo >> /tmp/seen
              i=$((i+1))
            done
            sort -u /tmp/seen
            echo "distinct backends: $(grep backend /tmp/seen | sort -u | wc -l)"
      """
    Then within 60 seconds pod client is Succeeded
    And the logs of container client of pod client contain "distinct backends: 2"
    And the logs of container client of pod client contain "backend-a"
    And the logs of container client of pod client contain "backend-b"

  Scenario: A Service without endpoints refuses connections
    When I apply:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: backend
      spec:
        selector: {app: nothing-has-this-label}
        ports:
        - port: 80
          targetPort: 8080
      """
    And I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: client
      spec:
        restartPolicy: Never
        containers:
        - name: client
          image: busybox:1.36
          command:
          - sh
          - -c
          - |
            # Until kube-proxy has programmed the node, the cluster IP is unroutable (a time-out).
            i=0
            while [ $i -lt 30 ]; do
              wget -q -T 2 -O - http://$BACKEND_SERVICE_HOST:$BACKEND_SERVICE_PORT/ 2>/tmp/err
              grep -q refused /tmp/err && break
              i=$((i+1))
              sleep 1
            done
            cat /tmp/err
            exit 1
      """
    Then within 60 seconds container client of pod client has terminated with reason Error and exit code 1
    And the logs of container client of pod client contain "Connection refused"
